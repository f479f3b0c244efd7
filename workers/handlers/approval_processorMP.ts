/**
 * `process_type = approval_processorMP`, as the original's configs spell
 * it: the same handler as `approval_processor` (same classes, so either
 * name restores the other's checkpoints).
 *
 * @module
 */

export * from "./approval_processor.ts";
