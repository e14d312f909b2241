// What the three ways of `blocking { }` share: the reserve of blocking threads; the resume after a
// hand-off (a thread that gave its loop or worker away resumes the task once its job has returned,
// which the loop's and the worker's drivers call at their end: `IOThread.driveLoop`,
// `WorkStealingPool.runThread(holding:)`); and the run of `body` on a blocking thread while the
// task waits (off-pool, and where a pool's task was moved while it waited for a unit).

import CIOPoolShims

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
