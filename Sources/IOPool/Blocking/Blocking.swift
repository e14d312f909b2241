// `blocking { }`: the public entry point, which picks the way `body` runs by where the caller runs
// (`ExecutionContext`). Everything `blocking` is in this folder: the budget (`BlockingCapacity`),
// what the three ways share (`BlockingHandOff`), and one file per way: `OffPoolBlocking` (elsewhere,
// and from an actor), `WorkStealingPool+Blocking` (on a worker), `IOThread+Blocking` (on a loop).

/// Runs a blocking call (a synchronous file read, a lock, a C library that blocks) without stalling
/// the pool the caller runs on, and returns its result.
///
/// ```swift
/// let pool = try WorkStealingPool()
/// try pool.spawn {
///     let contents = try await blocking { try legacyBlockingRead(path) }
///     return contents.count
/// }
/// ```
///
/// Every context has a budget of sections that may run at once; a call that finds it exhausted
/// waits in line, first come first served, and holds its unit only while `body` runs:
/// ``WorkStealingPool/Configuration/maxBlocking`` and ``IOThreadPool/Configuration/maxBlocking``
/// per pool, ``OffPoolBlocking/maxBlocking`` for code outside any pool (default 512 each, as tokio's
/// `max_blocking_threads`). Threads follow the budget: no more than about one per running section.
///
/// Where the caller runs decides how `body` runs:
/// - **On a ``WorkStealingPool`` worker**: hands the worker (its queues and identity) to a backup
///   thread (an idle one, or a new one), runs `body` on the current thread, and resumes the task on
///   the pool afterwards. The current thread becomes a backup thread. tokio-threadpool's
///   `blocking`, tokio's `block_in_place`.
/// - **On an ``IOThread``**: hands the loop (its queues, reactor and timers) to another thread, so
///   the loop keeps serving its sockets while `body` blocks, then resumes the task on the loop.
/// - **Anywhere else** (Swift's global executor, an actor): runs `body` on a dedicated blocking
///   thread, never on Swift's cooperative pool, and resumes the task afterwards.
///
/// Called from code isolated to an actor, `body` runs on a dedicated blocking thread (with the
/// budget of where the actor's job runs), so the actor is free for other callers meanwhile, as a
/// plain `await` would leave it.
///
/// Context: `nonisolated(nonsending)`, so a nonisolated caller on a pool does not hop anywhere
/// (on a worker or an IOThread `body` runs in the task's own job, on the caller's thread), and the
/// task comes back to the caller's actor or executor afterwards. The caller's task-local values
/// (ServiceContext, logging metadata) are visible inside `body` in every case: off-pool and from an
/// actor too, `body` runs in a job of the calling task (on the blocking thread).
///
/// Cancellation: a cancelled task does not start a section. If the task is cancelled before `body`
/// starts (at the call, or while it waits for a unit, e.g. because its pool's ``WorkStealingPool/shutdown()``
/// cancelled it), `blocking` throws `CancellationError` and `body` never runs. Once `body` has
/// started it runs to completion: cancellation does not interrupt it.
/// - Throws: `CancellationError` as above; otherwise whatever `body` throws.
nonisolated(nonsending)
public func blocking<Value, Failure: Error>(
    _ body: sending () throws(Failure) -> Value
) async throws -> sending Value {
    // On an actor: never run `body` in the actor's job, which would keep the actor busy throughout.
    let onActor = isIsolated(#isolation)
    switch ExecutionContext.current {
    case .workStealingPool(let pool):
        if onActor { return try await BlockingHandOff.runOffPool(body, budget: pool.capacity) }
        return try await pool.runBlocking(body)
    case .ioThread(let loop):
        if onActor { return try await BlockingHandOff.runOffPool(body, budget: loop.blockingCapacity) }
        return try await loop.runBlocking(body)
    case .elsewhere:
        return try await BlockingHandOff.runOffPool(body, budget: OffPoolBlocking.capacity)
    }
}

/// Whether the caller of a nonsending function is isolated to an actor. (A function rather than
/// `#isolation != nil` inline, which Swift 6.3's LLVM lowering of `blocking` crashes on.)
@inline(never)
private func isIsolated(_ isolation: (any Actor)?) -> Bool { isolation != nil }
