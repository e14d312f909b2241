extension WorkStealingPool {
    /// A point-in-time copy of one worker's counters. Values only grow; subtract two snapshots to
    /// measure an interval.
    public struct WorkerMetrics: Sendable, Hashable, CustomStringConvertible {
        /// The worker's 0-based index.
        public var index: Int
        /// Jobs run (task jobs; LIFO-slot runs included).
        public var jobsRun: UInt64
        /// Siblings' queues this worker tried to steal from.
        public var stealAttempts: UInt64
        /// Steal attempts that took jobs.
        public var steals: UInt64
        /// Times the worker parked (went to sleep with nothing to do).
        public var parks: UInt64
        /// Times another thread woke it.
        public var unparks: UInt64
        /// Jobs run straight from the LIFO slot after the previous job.
        public var lifoHits: UInt64
        /// Jobs taken from the inject queue.
        public var injectPops: UInt64
        /// Jobs in its local ring now.
        public var localQueueDepth: Int
        /// Nanoseconds the worker has not been parked since the pool was created: running jobs,
        /// searching, polling the driver without blocking (tokio's busy duration). A worker whose
        /// thread has not started yet, or has stopped, counts as parked. Read while a park ends, it
        /// can come out slightly high, and a later snapshot lower by at most that park's length.
        public var busyNanoseconds: UInt64
        /// Nanoseconds the worker has been parked (asleep on its condition or on the shared
        /// driver's `epoll_wait`) since the pool was created.
        public var parkedNanoseconds: UInt64

        public var description: String {
            "worker \(index): jobs=\(jobsRun) steals=\(steals)/\(stealAttempts) parks=\(parks) unparks=\(unparks) lifo=\(lifoHits) inject=\(injectPops) queued=\(localQueueDepth) busy=\(busyNanoseconds)ns"
        }
    }

    /// A point-in-time copy of the pool's counters.
    public struct Metrics: Sendable, Hashable, CustomStringConvertible {
        /// One entry per worker, in index order.
        public var workers: [WorkerMetrics]
        /// `blocking { }` sections holding a unit of capacity now.
        public var blockingRunning: Int
        /// Tasks waiting for a unit of blocking capacity.
        public var blockingWaiting: Int
        /// OS threads the pool has started that are alive now (workers and backup threads).
        public var threadsAlive: Int
        /// Alive threads that hold no worker: running a blocking call, or idle until `keepAlive`.
        public var backupThreadsAlive: Int
        /// Jobs in the inject queue now.
        public var injectQueueDepth: Int
        /// Polls of the shared driver (`epoll_wait`, blocking or not), by whichever worker held it.
        public var driverPolls: UInt64
        /// I/O readiness events the shared driver delivered (eventfd wake-ups excluded).
        public var driverEvents: UInt64
        /// Sockets registered with the shared driver's epoll instance now.
        public var registeredSockets: Int
        /// Sleeps armed on the shared driver's timers now (`sleep`, `intervals`, timeouts).
        public var pendingTimers: Int
        /// Tasks spawned on the pool that have not finished (``WorkStealingPool/liveTaskCount``).
        public var liveTasks: Int

        public var description: String {
            var lines = workers.map(\.description)
            lines.append(
                "blocking running=\(blockingRunning) waiting=\(blockingWaiting) threads=\(threadsAlive) backup=\(backupThreadsAlive) inject=\(injectQueueDepth) polls=\(driverPolls) events=\(driverEvents) sockets=\(registeredSockets) timers=\(pendingTimers) tasks=\(liveTasks)")
            return lines.joined(separator: "\n")
        }
    }

    /// The pool's counters now. Any thread; takes the blocking capacity's, the thread reserve's
    /// and the driver's timer locks briefly, and reads the clock once per worker.
    public var metrics: Metrics {
        let (running, waiting) = capacity.snapshot
        let alive = reserve.aliveCount
        let holding = activeWorkerCount
        return Metrics(
            workers: workers.map { worker in
                let counters = worker.counters
                let time = counters.parkedTime.snapshot()
                return WorkerMetrics(
                    index: worker.index, jobsRun: counters.jobsRun.current, stealAttempts: counters.stealAttempts.current,
                    steals: counters.steals.current, parks: counters.parks.current, unparks: counters.unparks.current,
                    lifoHits: counters.lifoHits.current, injectPops: counters.injectPops.current,
                    localQueueDepth: worker.queue.count, busyNanoseconds: time.busy, parkedNanoseconds: time.parked)
            },
            blockingRunning: running, blockingWaiting: waiting, threadsAlive: alive,
            backupThreadsAlive: max(0, alive - holding), injectQueueDepth: inject.count,
            driverPolls: driver.polls.current, driverEvents: driver.events.current,
            registeredSockets: driver.reactor.registeredCount, pendingTimers: driver.pendingTimerCount,
            liveTasks: accounting.liveCount)
    }
}

extension WorkStealingPool {
    /// Whether the pool has begun to stop its workers (a shutdown got past waiting for, or
    /// cancelling, its tasks): from then on its sleeps and I/O waits fail. Any thread.
    public var isStopped: Bool { isShuttingDown }
}
