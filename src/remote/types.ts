/* What remote operations take and answer: shared by the git runner, the store's remotes facet and StoreClient. */

/** A configured remote: its name and URL, as `git remote -v` shows them. */
export interface RemoteInfo {
  name: string;
  url: string;
}

/**
 * Progress of a transfer, from git's own progress lines (`Receiving objects:  45% (9/20)`): the phase as git names
 * it, how far it is, and the total when git knows it.
 */
export interface Progress {
  phase: string;
  done: number;
  total?: number;
}

/** How a transfer runs: progress callbacks, and how long git may take before it is stopped (default 120 s). */
export interface TransferOptions {
  onProgress?: (progress: Progress) => void;
  timeoutMs?: number;
  /**
   * A token for a `store serve` with auth on (`store token create` there), sent as `Authorization: Bearer`. git gets
   * it in its environment, never on its command line, where `ps` would show it. Plain git remotes take credentials
   * from git's own credential helpers instead.
   */
  token?: string;
}

/**
 * A ref that moved: its full name, the commit it held (null: it is new) and holds now (null: it was deleted), and
 * whether the move was not a fast-forward (the old commit is not in the new one's history).
 */
export interface RefUpdate {
  ref: string;
  old: string | null;
  new: string | null;
  forced?: boolean;
}

/** What a fetch moved: the remote-tracking refs (`refs/remotes/<remote>/<branch>`) that changed. */
export interface FetchResult {
  remote: string;
  updated: RefUpdate[];
}

/** What a push moved: the remote's branches (`refs/heads/<branch>`) that changed. */
export interface PushResult {
  remote: string;
  updated: RefUpdate[];
}
