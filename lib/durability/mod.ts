/**
 * Durability: the per-child journal (CRC-checked records, group commit),
 * queue snapshots (JSON, versioned, restored through a class registry),
 * the persistent memory of item ids already routed, and the private state
 * folder's file helpers.
 *
 * May import only `core/`, `config/` and `queue/`.
 *
 * @module
 */

export * from "./group_commit.ts";
export * from "./journal.ts";
export * from "./seen_store.ts";
export * from "./snapshot.ts";
export * from "./snapshot_file.ts";
export * from "./state_dir.ts";
