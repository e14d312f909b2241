import CIOPoolShims

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
    if let pool = WorkStealingPool.current {
        if onActor { return try await BlockingHandOff.runOffPool(body, budget: pool.capacity) }
        return try await pool.runBlocking(body)
    }
    if let loop = IOThread.current {
        if onActor { return try await BlockingHandOff.runOffPool(body, budget: loop.blockingCapacity) }
        return try await loop.runBlocking(body)
    }
    return try await BlockingHandOff.runOffPool(body, budget: OffPoolBlocking.capacity)
}

/// Whether the caller of a nonsending function is isolated to an actor. (A function rather than
/// `#isolation != nil` inline, which Swift 6.3's LLVM lowering of `blocking` crashes on.)
@inline(never)
private func isIsolated(_ isolation: (any Actor)?) -> Bool { isolation != nil }

/// The budget of `blocking { }` outside any pool (on Swift's global executor, on an actor that is
/// not pinned to an ``IOThread``): one for the whole process.
public enum OffPoolBlocking {
    static let capacity = BlockingCapacity(limit: 512)

    /// Most off-pool `blocking { }` sections running at once, process-wide; later ones wait, first
    /// come first served. Default 512, as tokio's `max_blocking_threads`. May be changed at any
    /// time: a higher limit admits waiting calls at once, a lower one takes effect as running
    /// sections end. Must be at least 1.
    public static var maxBlocking: Int {
        get { capacity.limit }
        set {
            usagePrecondition(newValue >= 1, "OffPoolBlocking.maxBlocking must be at least 1, got \(newValue)")
            capacity.limit = newValue
        }
    }
}

/// The machinery `blocking { }` shares between its three cases.
enum BlockingHandOff {
    /// Threads for `blocking { }` off-pool and for IOThread loops handed over. Never stopped; idle
    /// threads exit after 10 s (tokio's `thread_keep_alive`).
    static let reserve = ThreadReserve(.init(namePrefix: "iopool-blocking-", keepAliveNanoseconds: 10_000_000_000))

    private final class PendingResume {
        let continuation: UnsafeContinuation<Void, Never>
        init(_ continuation: UnsafeContinuation<Void, Never>) { self.continuation = continuation }
    }

    /// Suspends the calling task until the thread it runs on has returned from the current job to
    /// its loop, which then calls `resumePendingTask()`: the task's next job is enqueued from there,
    /// on its executor (the pool, or the loop, that it prefers), by a thread that no longer runs it.
    static func suspendUntilJobReturns() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            precondition(ciopool_resume_after_job_get() == nil, "a thread has one pending resume at most")
            ciopool_resume_after_job_set(Unmanaged.passRetained(PendingResume(continuation)).toOpaque())
        }
    }

    /// Resumes the task left by `suspendUntilJobReturns()` on this thread, if any; true if there was one.
    static func resumePendingTask() -> Bool {
        guard let pointer = ciopool_resume_after_job_get() else { return false }
        ciopool_resume_after_job_set(nil)
        Unmanaged<PendingResume>.fromOpaque(pointer).takeRetainedValue().continuation.resume()
        return true
    }

    /// Off-pool `blocking { }` (and from an actor): takes a unit of `budget`, then runs `body` on a
    /// reserve thread.
    static func runOffPool<Value, Failure: Error>(
        _ body: sending () throws(Failure) -> Value, budget: BlockingCapacity
    ) async throws -> sending Value {
        try await budget.acquire()
        return try await runOnBlockingThread(body, releasing: budget)
    }

    /// Runs `body` on a reserve thread while the calling task waits, and gives the caller's unit of
    /// `capacity` back as soon as `body` returns.
    ///
    /// `body` runs in a job *of the calling task*, which the task executor `BlockingThreadExecutor`
    /// runs on a reserve thread: so the task's task-local values (ServiceContext, logging metadata)
    /// are there, as they are when a pool runs `body` in the task's own job. (A bare closure handed
    /// to a thread runs outside any task, where every task-local reads nil.) The executor preference
    /// is set only around the one call below, so the task goes back to its own executor (its
    /// actor, its pool's executor, or the global one) as soon as `body` has returned.
    static func runOnBlockingThread<Value, Failure: Error>(
        _ body: sending () throws(Failure) -> Value, releasing capacity: BlockingCapacity
    ) async throws -> sending Value {
        // `body` does not escape: the task waits below until the job on the blocking thread has run
        // and dropped it.
        try await withoutActuallyEscaping(body) { (escaping) async throws -> sending Value in
            let call = HandedOverCall(escaping)
            await withTaskExecutorPreference(BlockingThreadExecutor.shared) {
                await call.runOnPreferredExecutor(releasing: capacity)
            }
            return try call.takeResult()
        }
    }

    /// One `blocking { }` body and its result, between the calling task and the job that runs it.
    /// The task is suspended in `runOnBlockingThread` while `body` runs, which orders every
    /// access; hence `@unchecked Sendable`.
    private final class HandedOverCall<Value, Failure: Error>: @unchecked Sendable {
        private var body: (() throws(Failure) -> Value)?
        private var result: Result<Value, Failure>?

        init(_ body: @escaping () throws(Failure) -> Value) { self.body = body }

        /// Runs on the task's preferred executor (`@concurrent`: a nonisolated call hops there),
        /// i.e. on a blocking thread, and drops the body before returning.
        @concurrent @inline(never)
        func runOnPreferredExecutor(releasing capacity: BlockingCapacity) async {
            let body = self.body.take()!
            result = Result { () throws(Failure) in try body() }
            capacity.release()
        }

        func takeResult() throws(Failure) -> sending Value { try result.take()!.get() }
    }
}

/// The task executor of off-pool `blocking { }` sections: every job enqueued on it runs on a
/// thread of `BlockingHandOff.reserve` (an idle one, or a new one), never on Swift's cooperative
/// pool. A task prefers it only for the duration of one body (`runOnBlockingThread`), so its one job
/// there is the body's; the thread goes back to the reserve when that job returns.
final class BlockingThreadExecutor: TaskExecutor {
    static let shared = BlockingThreadExecutor()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        do {
            try BlockingHandOff.reserve.run { job.runSynchronously(on: executor) }
        } catch {
            // No thread could start: run the body on the global executor rather than lose the job
            // (an `enqueue` must not run the job itself: the enqueuing thread may still be inside it).
            globalConcurrentExecutor.enqueue(job)
        }
    }
}

extension WorkStealingPool {
    /// `blocking { }` on one of this pool's workers.
    func runBlocking<Value, Failure: Error>(
        _ body: sending () throws(Failure) -> Value
    ) async throws -> sending Value {
        try await capacity.acquire()
        // Waiting may have moved the task: look again at where it runs.
        guard let thread = WorkerThread.current, thread.pool === self, let worker = thread.worker else {
            return try await BlockingHandOff.runOnBlockingThread(body, releasing: capacity)
        }
        let handedOff = handOff(worker, from: thread)
        let result = Result { () throws(Failure) in try body() }
        capacity.release()
        if handedOff { await BlockingHandOff.suspendUntilJobReturns() }
        return try result.get()
    }

    /// Gives `worker` to another thread; false if no thread could take it (then the caller blocks
    /// its worker, as a pool without `blocking` would).
    private func handOff(_ worker: Worker, from thread: WorkerThread) -> Bool {
        // The LIFO slot cannot be stolen; put its job where the new holder and stealers find it.
        if worker.lifoSlot != 0 {
            worker.queue.push(worker.lifoSlot, overflowingInto: inject)
            worker.lifoSlot = 0
        }
        requeueDeferred(worker)
        thread.worker = nil
        do {
            try reserve.run { [self] in runThread(holding: worker) }
            return true
        } catch {
            thread.worker = worker
            return false
        }
    }
}
