// The worker loop of `WorkStealingPool`: scheduling, searching (stealing), parking. The design is
// at the top of WorkStealingPool.swift; the wake-up policy at the top of Idle.swift.

extension WorkStealingPool {
    /// Places a job: on the calling worker's LIFO slot or ring, or in the inject queue.
    @inline(__always)
    func schedule(_ job: UInt) {
        if let thread = WorkerThread.current, thread.pool === self, let worker = thread.worker {
            scheduleLocal(job, on: worker)
        } else if inject.push(job) {
            notifyParked()
        } else {
            forwardAfterStop(job)  // the inject queue is closed: the pool has stopped
        }
    }

    private func scheduleLocal(_ job: UInt, on worker: Worker) {
        let notify: Bool
        if isYield(job, worker) {
            // A yielded task waits until the worker runs dry.
            worker.deferred.append(job)
            return
        } else if !worker.lifoEnabled {
            worker.queue.push(job, overflowingInto: inject)
            notify = true
        } else {
            let previous = worker.lifoSlot
            worker.lifoSlot = job
            notify = previous != 0
            if previous != 0 { worker.queue.push(previous, overflowingInto: inject) }
        }
        // While polling the driver, wake-ups are announced once, after the poll (`park`).
        if notify && !worker.isPolling { notifyParked() }
    }

    /// Whether `job` is a task that yielded. `Task.yield()` does not enqueue its task: it enqueues a
    /// continuation job (no task of its own) and suspends; that job then resumes the task, i.e.
    /// enqueues it while no task is current. So a task enqueued on a worker by a running job with no
    /// current task is a yield; the job enqueueing itself is checked too, in case the runtime ever
    /// does that directly. A driver poll's wake-ups are never yields, and are checked first:
    /// `runningJob` still names the last job run, and waking that same task (a ping-pong on one
    /// connection) would otherwise be deferred as a yield, which made every round trip unpark,
    /// search and park again (issue 11: 0.93 unparks, 2.5 steal attempts and 1.9 parks per round
    /// trip before, 0, 1.0 and 1.0 after).
    @inline(__always)
    private func isYield(_ job: UInt, _ worker: Worker) -> Bool {
        if worker.isPolling { return false }
        if job == worker.runningJob { return true }
        return withUnsafeCurrentTask { $0 == nil }
    }

    /// Wakes one parked worker if the policy says so (see `Idle`), starting its thread if needed.
    /// If the OS refuses the thread, the next worker in line is tried (a parked one with a thread
    /// comes first then), so the job that asked is not left waiting while a worker sleeps.
    func notifyParked() {
        for _ in 0..<workers.count {
            guard let (index, needsThread) = idle.workerToNotify() else { return }
            let worker = workers[index]
            guard needsThread else {
                worker.counters.unparks.add(1)
                worker.parker.unpark(driver: driver)
                return
            }
            worker.isSearching = true  // a notified worker starts out searching (`Idle.workerToNotify`)
            if startThread(for: worker) { return }
        }
    }

    /// Runs `worker` on the calling thread until the pool shuts down or `blocking { }` hands the
    /// worker to another thread.
    func runWorker(_ worker: Worker, on thread: WorkerThread) {
        while !isShuttingDown {
            worker.tick &+= 1
            worker.lifoEnabled = true
            if worker.tick % WorkStealingPool.eventInterval == 0 { maintenance(worker) }
            if let job = nextJob(worker) ?? stealWork(worker) {
                runTask(job, worker, thread)
                if thread.worker !== worker { return }  // handed off: the worker is not ours any more
                continue
            }
            if !worker.deferred.isEmpty {
                // Nothing else to run: poll for I/O (without blocking), then run the yielded tasks again.
                maintenance(worker)
                continue
            }
            park(worker)
        }
    }

    private func runTask(_ job: UInt, _ worker: Worker, _ thread: WorkerThread) {
        if worker.isSearching {
            worker.isSearching = false
            if idle.transitionFromSearching() { notifyParked() }
        }
        runJob(job, worker)
        var lifoPolls = 0
        while thread.worker === worker, worker.lifoSlot != 0 {
            let next = worker.lifoSlot
            worker.lifoSlot = 0
            if lifoPolls >= WorkStealingPool.maxLifoPollsPerTick {
                worker.lifoEnabled = false
                worker.queue.push(next, overflowingInto: inject)
                return
            }
            lifoPolls += 1
            worker.counters.lifoHits.bump()
            runJob(next, worker)
        }
    }

    @inline(__always)
    private func runJob(_ job: UInt, _ worker: Worker) {
        worker.counters.jobsRun.bump()
        worker.runningJob = job
        if job & WorkStealingPool.globalJobTag != 0 {
            // A job the runtime gave its global executor (see WorkStealingPool+GlobalExecutor.swift).
            runGlobalJob(job)
            return
        }
        unsafeBitCast(job, to: UnownedJob.self).runSynchronously(on: asUnownedTaskExecutor())
        // After a hand-off, `worker` belongs to another thread: nothing here may touch it.
    }

    private func nextJob(_ worker: Worker) -> UInt? {
        if worker.tick % WorkStealingPool.globalQueueInterval == 0, let job = inject.pop() {
            worker.counters.injectPops.bump()
            return job
        }
        if worker.lifoSlot != 0 {
            defer { worker.lifoSlot = 0 }
            return worker.lifoSlot
        }
        return worker.queue.pop() ?? popInjectBatch(worker)
    }

    /// Moves a fair share of the inject queue into the local ring and returns the first job.
    private func popInjectBatch(_ worker: Worker) -> UInt? {
        guard !inject.isEmpty else { return nil }
        let limit = min(inject.count / workers.count + 1, Int(RunQueue.capacity / 2))
        let batch = inject.pop(upTo: limit)
        guard let first = batch.first else { return nil }
        worker.counters.injectPops.bump(UInt64(batch.count))
        for job in batch.dropFirst() { worker.queue.push(job, overflowingInto: inject) }
        return first
    }

    /// Searching: steals half of a sibling's ring (starting at a random one), then tries the
    /// inject queue. Refused when half the workers search already.
    private func stealWork(_ worker: Worker) -> UInt? {
        if !worker.isSearching {
            guard idle.transitionToSearching() else { return nil }
            worker.isSearching = true
        }
        let count = workers.count
        let start = worker.random(below: count)
        for offset in 0..<count {
            let victim = workers[(start + offset) % count]
            if victim === worker { continue }
            worker.counters.stealAttempts.bump()
            if let job = victim.queue.steal(into: worker.queue) {
                worker.counters.steals.bump()
                return job
            }
        }
        return popInjectBatch(worker)
    }

    /// Every `eventInterval` ticks, and when only yielded tasks are left: poll the driver without
    /// blocking (if nobody else holds it), then put the yielded tasks back in the ring.
    private func maintenance(_ worker: Worker) {
        if driver.tryLock() {
            worker.isPolling = true
            driver.poll(block: false)
            worker.isPolling = false
            driver.unlock()
        }
        requeueDeferred(worker)
        if shouldNotifyOthers(worker) { notifyParked() }
    }

    func requeueDeferred(_ worker: Worker) {
        guard !worker.deferred.isEmpty else { return }
        for job in worker.deferred { worker.queue.push(job, overflowingInto: inject) }
        worker.deferred.removeAll(keepingCapacity: true)
    }

    private func shouldNotifyOthers(_ worker: Worker) -> Bool {
        !worker.isSearching && (worker.lifoSlot != 0 ? 1 : 0) + worker.queue.count > 1
    }

    private func park(_ worker: Worker) {
        if worker.hasLocalWork { return }
        let wasSearching = worker.isSearching
        worker.isSearching = false
        if idle.transitionToParked(worker.index, isSearching: wasSearching) {
            // The last searcher re-checks every queue: work may have arrived while nobody was woken.
            notifyIfWorkPending()
        }
        worker.counters.parks.bump()
        worker.counters.parkedTime.begin()
        while !isShuttingDown {
            worker.isPolling = true
            worker.parker.park(driver: driver)
            worker.isPolling = false
            if transitionFromParked(worker) { break }
        }
        worker.counters.parkedTime.end()
        if shouldNotifyOthers(worker) { notifyParked() }
    }

    /// After a wake-up: true if the worker should run (it has local work, or it was notified).
    private func transitionFromParked(_ worker: Worker) -> Bool {
        if worker.hasLocalWork {
            // Woken by the driver's events, not by a notification: then it does not search.
            worker.isSearching = !idle.unparkWorker(worker.index)
            return true
        }
        if idle.isParked(worker.index) { return false }
        worker.isSearching = true
        return true
    }

    private func notifyIfWorkPending() {
        if !inject.isEmpty || workers.contains(where: { !$0.queue.isEmpty }) {
            notifyParked()
        }
    }
}
