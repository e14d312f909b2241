// `blocking { }` on an IOThread: the loop (its queues, reactor and timers) moves to a thread of the
// blocking reserve, which goes on driving it while `body` runs on the current thread, and the task
// resumes on the loop afterwards.

import CIOPoolShims

extension IOThread {
    /// `blocking { }` on this loop: takes a unit of the pool's blocking capacity (waiting in line if
    /// none is free), hands the loop (its queues, reactor and timers) to a reserve thread, which goes
    /// on with `driveLoop` where this thread leaves it, runs `body` here, gives the unit back, and
    /// resumes the task on the loop afterwards. Loop thread only.
    ///
    /// The loop's confined state passes between the threads through the reserve's mutex (this
    /// thread's last loop access happens before the hand-off, the new thread's first after it), and
    /// this thread checks after every job that it still runs the loop (`runLocalJobs`).
    func runBlocking<Value, Failure: Error>(
        _ body: sending () throws(Failure) -> Value
    ) async throws -> sending Value {
        precondition(isCurrent, "runBlocking must be called on the loop's thread")
        try await blockingCapacity.acquire()
        // Waiting may have moved the task (it resumes where it prefers to run): look again.
        guard isCurrent else {
            return try await BlockingHandOff.runOnBlockingThread(body, releasing: blockingCapacity)
        }
        ciopool_current_thread_set(nil)
        do {
            try BlockingHandOff.reserve.run { [self] in
                afterStart?(index)
                driveLoop()
            }
        } catch {
            ciopool_current_thread_set(selfPointer)  // no thread to take over: block the loop
            defer { blockingCapacity.release() }
            return try body()
        }
        let result = Result { () throws(Failure) in try body() }
        blockingCapacity.release()
        await BlockingHandOff.suspendUntilJobReturns()
        return try result.get()
    }
}
