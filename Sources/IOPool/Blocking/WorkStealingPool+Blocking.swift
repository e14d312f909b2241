// `blocking { }` on a WorkStealingPool worker: the worker (its queues and identity) moves to a
// backup thread, `body` runs on the current one, which becomes a backup thread, and the task
// resumes on the pool (tokio's `block_in_place`).

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
