// `ExecutionContext`: the one answer to "where does the calling code run?", for everything that
// behaves differently on an IOThread, on a WorkStealingPool worker and elsewhere: `spawn`,
// `blocking { }`, `sleep`, a socket's first operation (its registration), the pool events.

/// Where the calling code runs, as the pools see it.
///
/// Two C thread-locals answer it (`ciopool_current_thread_get`, `ciopool_current_worker_get`):
/// reading `current` costs the same loads as `IOThread.current` followed by
/// `WorkStealingPool.current`, in that order, with no allocation and no retain beyond theirs. It
/// is on the per-message path (a spawn, a socket's registration), hence `@inline(__always)`, so
/// that a `switch` on it folds into the two checks.
///
/// The cases exclude each other: a thread runs at most one IOThread's loop or holds one worker
/// (a loop and a worker are driven by different threads, and a thread that handed its loop or its
/// worker away in `blocking { }` is neither while the body runs).
enum ExecutionContext {
    /// On the loop of this IOThread (a task that prefers it, an actor pinned to it).
    case ioThread(IOThread)
    /// On a worker of this pool (a task that prefers it, a job of the global executor it took over).
    case workStealingPool(WorkStealingPool)
    /// Anywhere else: Swift's global executor, an actor of its own, a thread outside both pools
    /// (a `blocking { }` body's among them).
    case elsewhere

    /// The calling thread's context. One TLS load on an IOThread; two (and the worker's field)
    /// elsewhere.
    @inline(__always)
    static var current: ExecutionContext {
        if let thread = IOThread.current { return .ioThread(thread) }
        if let pool = WorkStealingPool.current { return .workStealingPool(pool) }
        return .elsewhere
    }
}
