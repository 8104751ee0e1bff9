/**
 * gitstore: a branch-consistent configuration store whose database is a bare git repository.
 *
 * @example
 * ```ts
 * import fs from 'node:fs';
 * import { openStore } from 'gitstore';
 * const store = await openStore({ fs, dir: 'store.git', create: true });
 * await store.set('vm/web1/memory', '2048');
 * console.log(await store.getText('vm/web1/memory'));
 * ```
 */

export { ACCESS_KEY, AccessRules, ADMIN_ROLE, Grants, type Right } from './access/rules.js';
export { type CreateTokenOptions, type Principal, type TokenInfo, Tokens } from './access/tokens.js';
export {
  type Conflict,
  ERROR_CODES,
  ERRORS,
  type ErrorBody,
  type ErrorClass,
  type ErrorCode,
  EXIT,
  errorBody,
  errorBodyOf,
  exitCodeOf,
  isStoreError,
  StoreError,
  statusOf,
  type Violation,
} from './errors.js';
export { type KeyPredicate, type Verdict, verdictOfExit } from './history/bisect.js';
export type { BlameLine } from './history/blame.js';
export {
  type CommitInfo,
  formatIdentity,
  type Identity,
  parseIdentity,
  signatureTime,
} from './history/commit-info.js';
export type { Change } from './history/diff.js';
export { type GitDate, parseGitDate } from './history/git-date.js';
export type { LogOptions, LogPage } from './history/log.js';
export { parseDuration } from './history/retention.js';
export { isIsoTime, type ReadAt, type ResolveOptions } from './history/revision.js';
export { type StoreApi, StoreClient } from './http/client.js';
export { MERGE_CONFIG_KEY, type MergePolicy } from './merge/config.js';
export { isAncestor } from './merge/merge-base.js';
export { STRATEGY_NAMES, type StrategyName } from './merge/strategies.js';
export type { GitObject, ObjectType } from './objects/object.js';
export { decodeObjects, encodeObjects } from './objects/object-stream.js';
export { checkRemoteName, checkRemoteUrl } from './remote/config.js';
export { QuarantinedObjects } from './remote/quarantine.js';
export {
  checkPush,
  type NewCommit,
  type PathChange,
  type PushedObjects,
  type PushedRef,
  parseRefUpdates,
  type Refusal,
  ZERO_OID,
} from './remote/receive-check.js';
export {
  REPLICATION_CONFIG_KEY,
  type ReplicationConfig,
  replicationOf,
} from './replication/config.js';
export {
  gitUrlOf,
  type PeerBranchStatus,
  type ReplicationStatus,
  Replicator,
  type ReplicatorOptions,
} from './replication/replicator.js';
export type { FsLike } from './storage/fs.js';
export type { CreatedToken, TokenAdmin } from './store/access.js';
export type { FsckProblem, FsckReport } from './store/fsck.js';
export type { RecoveryReport } from './store/recovery.js';
export type { TransactionResult } from './store/store.js';
export {
  type BatchOp,
  type BisectOptions,
  type BisectResult,
  type BranchInfo,
  type CloneOptions,
  type CompactOptions,
  type CompactResult,
  type Consistency,
  cloneStore,
  type FetchOptions,
  type FetchResult,
  type GcResult,
  type ListEntry,
  type MergeOptions,
  type MergePreview,
  type MergeResult,
  type OpenOptions,
  openStore,
  type Precondition,
  type Progress,
  type PullOptions,
  type PullResult,
  type PushOptions,
  type PushResult,
  type ReadOptions,
  type RefUpdate,
  type RemoteInfo,
  type Remotes,
  type SetResult,
  Store,
  type Value,
  type WriteOptions,
  type WriteResult,
} from './store/store.js';
export type { Isolation, Transaction, TransactionOptions } from './store/transaction.js';
export type { CommitEvents, Watch, WatchEvent } from './store/watch.js';
export { flattenDocument, nestDocument, valueToLeaf } from './tree/document.js';
export { checkBranchName, MAX_KEY_BYTES, normalizeKey, parseKey } from './tree/keys.js';
