/**
 * @usage-event-service/producer: send usage events to the
 * usage-event-service queue from Node.js, validated with the service's own
 * rules (see docs/usage-events-sqs.md).
 */
export {
  Publisher,
  SendError,
  serializeEvent,
  validateEvent,
  MAX_BATCH_BYTES,
  MAX_BATCH_ENTRIES,
  type Amount,
  type BatchSender,
  type CommitEvent,
  type ConsumeEvent,
  type GrantEvent,
  type PublisherOptions,
  type Receipt,
  type RefundEvent,
  type ReleaseEvent,
  type Result,
  type UsageEvent,
  type VoidEvent,
} from "./publisher.js";
export {
  RejectionError,
  parseEvent,
  checkQueued,
  OPERATIONS,
  MAX_ID_LENGTH,
  MAX_METADATA_BYTES,
  MAX_HOLD_SECONDS,
  MAX_GRANT_PRIORITY,
  DEFAULT_GRANT_PRIORITY,
  type ParsedEvent,
  type Reason,
} from "./event.js";
export { Decimal, MAX_SIGNIFICANT_DIGITS } from "./decimal.js";
export { groupId, poolGroupId, fifoId } from "./fifo.js";
