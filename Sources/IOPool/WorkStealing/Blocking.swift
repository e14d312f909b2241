import CIOPoolShims

/// Runs a blocking call (a synchronous file read, a lock, a C library that blocks) without stalling
/// the pool the caller runs on, and returns its result.
///
/// ```swift
/// let pool = try WorkStealingPool()
/// try pool.spawn {
///     let contents = try await blocking { try legacyBlockingRead(path) }
///     // ...
/// }
/// ```
///
/// Where the caller runs decides how:
/// - **On a ``WorkStealingPool`` worker**: takes a unit of the pool's blocking capacity
///   (``WorkStealingPool/Configuration/maxBlocking``; if all are taken, waits in line), hands the
///   worker (its queues and identity) to a backup thread (an idle one, or a new one), runs `body` on
///   the current thread, and resumes the task on the pool afterwards. The current thread becomes a
///   backup thread. tokio-threadpool's `blocking`, tokio's `block_in_place`.
/// - **On an ``IOThread``**: hands the loop (its queues, reactor and timers) to a fresh thread, so
///   the loop keeps serving its sockets while `body` blocks, then resumes the task on the loop.
/// - **Anywhere else** (Swift's global executor, an actor): runs `body` on a dedicated blocking
///   thread, never on Swift's cooperative pool, and resumes the task afterwards.
///
/// `body` runs to completion: cancelling the task does not interrupt it.
/// - Throws: whatever `body` throws.
public func blocking<Value, Failure: Error>(
    _ body: sending () throws(Failure) -> Value
) async throws(Failure) -> sending Value {
    if let pool = WorkStealingPool.current {
        return try await pool.runBlocking(body)
    }
    if let loop = IOThread.current {
        return try await loop.runBlocking(body)
    }
    return try await BlockingHandOff.runOnBlockingThread(body)
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

    /// Holds a value for a hand-over between two threads that a continuation orders (the caller is
    /// suspended until the other thread has finished with it), which is why it is `@unchecked Sendable`.
    private final class Slot<Value>: @unchecked Sendable {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    /// Runs `body` on a reserve thread while the calling task waits.
    static func runOnBlockingThread<Value, Failure: Error>(
        _ body: sending () throws(Failure) -> Value
    ) async throws(Failure) -> sending Value {
        // `body` does not escape: the task waits below until the other thread has run it.
        try await withoutActuallyEscaping(body) { (escaping) async throws(Failure) -> sending Value in
            let call = Slot<(() throws(Failure) -> Value)?>(escaping)
            let result = Slot<Result<Value, Failure>?>(nil)
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let work: @Sendable () -> Void = {
                    let body = call.value!
                    call.value = nil
                    result.value = Result { () throws(Failure) in try body() }
                    continuation.resume()
                }
                do {
                    try reserve.run(work)
                } catch {
                    work()  // no thread could start: block here rather than fail the call
                }
            }
            return try result.value.take()!.get()
        }
    }
}

extension WorkStealingPool {
    /// `blocking { }` on one of this pool's workers.
    func runBlocking<Value, Failure: Error>(
        _ body: sending () throws(Failure) -> Value
    ) async throws(Failure) -> sending Value {
        await capacity.acquire()
        // Waiting may have moved the task: look again at where it runs.
        guard let thread = WorkerThread.current, thread.pool === self, let worker = thread.worker else {
            defer { capacity.release() }
            return try await BlockingHandOff.runOnBlockingThread(body)
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
