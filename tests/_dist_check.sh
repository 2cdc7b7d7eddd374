#!/bin/sh
# The check of tests/dist_test.ts, run inside fresh mount, network and PID namespaces:
#   sh _dist_check.sh ARTIFACT WORKDIR "DIRS TO HIDE" "FILES TO HIDE"
# It prints `KEY value` lines, `FAIL why` on the first failure, and `DONE` at the end.
set -u
art=$1 w=$2 hide_dirs=$3 hide_files=$4
spid= tpid=
trap 'kill -9 $spid $tpid 2>/dev/null' EXIT
fail() { echo "FAIL $*"; exit 1; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

ip link set lo up || fail "ip link set lo up failed"
mount -t tmpfs -o size=768m,mode=0755 tmpfs "$w" || fail "mount tmpfs on $w failed"
for d in $hide_dirs; do mount -t tmpfs -o size=1m tmpfs "$d" || fail "hiding $d failed"; done
for f in $hide_files; do mount --bind /dev/null "$f" || fail "hiding $f failed"; done
mkdir -p "$w/bin" "$w/home" "$w/tmp" "$w/var" "$w/var2" || fail mkdir
cp "$art" "$w/bin/circuit" || fail "copy failed"

export PATH=/usr/bin:/bin HOME="$w/home" TMPDIR="$w/tmp"
unset XDG_CACHE_HOME DENO_DIR DENO_INSTALL_ROOT NPM_CONFIG_PREFIX CIRCUIT CIRCUIT_HMAC CIRCUIT_DISCOVER
if command -v deno >/dev/null 2>&1; then fail "deno is still visible at $(command -v deno)"; fi
echo "LINKS $(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')"
echo "HOME_BEFORE $(ls -A "$HOME" | wc -l)"
C="$w/bin/circuit"

t0=$(ms)
"$C" start --var "$w/var" >"$w/url" 2>"$w/server.err" &
spid=$!
i=0
while ! grep -q . "$w/url" 2>/dev/null; do
  i=$((i + 1))
  [ $i -le 1200 ] || fail "no URL after 120 s; server said: $(head -c 2000 "$w/server.err")"
  kill -0 $spid 2>/dev/null || fail "server exited; it said: $(head -c 2000 "$w/server.err")"
  sleep 0.1
done
echo "FIRST_START_MS $(( $(ms) - t0 ))"
u=$(head -n 1 "$w/url")
s="/X${u##*/Q}"
echo "URL $u"
echo "SPID $spid"
t0=$(ms)
echo "LS $("$C" ls -d "$u" /)"
echo "LS_MS $(( $(ms) - t0 ))"
t0=$(ms)
"$C" ls -d "$u" / >/dev/null
echo "LS2_MS $(( $(ms) - t0 ))"

echo '{"Path": "/bin/sh", "Args": ["-c", "echo hello from dist; echo DENO_DIR=${DENO_DIR-unset}"]}' |
  "$C" mkproc -d "$u" "$s/p" || fail "mkproc exited $?"
"$C" wait -d "$u" "$s/p" >/dev/null || fail "wait exited $?"
echo "OUT $("$C" stdout -d "$u" "$s/p" | tr '\n' '|')"

echo "FALLBACK $(HOME= "$C" ls -d "$u" /)"
echo "TMP_CACHE $(ls "$w/tmp" | tr '\n' ' ')"

"$C" ls -d "circuit://127.0.0.1:1/1/Q0000000000000000" / 2>"$w/e" >/dev/null
echo "BAD_RC $?"
echo "BAD_ERR $(wc -l <"$w/e") $(head -n 1 "$w/e")"

"$C" start --var "$w/var2" >"$w/url2" 2>"$w/server2.err" &
tpid=$!
i=0
while ! grep -q . "$w/url2" 2>/dev/null; do
  i=$((i + 1))
  [ $i -le 1200 ] || fail "no second URL after 120 s: $(head -c 2000 "$w/server2.err")"
  sleep 0.1
done
u2=$(head -n 1 "$w/url2")
echo "TPID $tpid"
echo "URL2 $u2"
kill -TERM $tpid
wait $tpid
echo "TERM_EXIT $?"
tpid=

"$C" suicide -d "$u" "$s" || fail "suicide exited $?"
wait $spid
echo "SERVER_EXIT $?"
spid=
echo DONE
