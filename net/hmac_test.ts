import { createHmac } from "node:crypto";
import { hmacSha256 } from "./hmac.ts";

Deno.test("hmacSha256() equals createHmac over label and body, for every key size class and label", () => {
  for (const size of [0, 16, 32, 64, 65, 100]) {
    const key = crypto.getRandomValues(new Uint8Array(size));
    for (const label of ["circuit/1 membership", "circuit/1 discovery"]) {
      for (const len of [0, 1, 200, 5000]) {
        const body = crypto.getRandomValues(new Uint8Array(len));
        const want = createHmac("sha256", key).update(label).update(body).digest();
        const got = hmacSha256(key, label, body);
        if (got.length !== 32 || got.some((b, i) => b !== want[i])) {
          throw new Error(`key ${size} B, label ${label}, body ${len} B: MACs differ`);
        }
      }
    }
  }
});
