/**
 * Subscription elements (`@join`, `@leave`).
 *
 * @module
 */

export {
  joinKind,
  leaveKind,
  type Source,
  SUBSCRIPTION_QUEUE_EVENTS,
  SubscriptionElement,
  type SubscriptionPeek,
  type SubscriptionReply,
} from "./subscription.ts";
