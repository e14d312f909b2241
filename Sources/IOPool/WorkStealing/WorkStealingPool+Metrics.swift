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

        public var description: String {
            "worker \(index): jobs=\(jobsRun) steals=\(steals)/\(stealAttempts) parks=\(parks) unparks=\(unparks) lifo=\(lifoHits) inject=\(injectPops) queued=\(localQueueDepth)"
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

        public var description: String {
            var lines = workers.map(\.description)
            lines.append(
                "blocking running=\(blockingRunning) waiting=\(blockingWaiting) threads=\(threadsAlive) backup=\(backupThreadsAlive) inject=\(injectQueueDepth)")
            return lines.joined(separator: "\n")
        }
    }

    /// The pool's counters now. Any thread.
    public var metrics: Metrics {
        let (running, waiting) = capacity.snapshot
        let alive = reserve.aliveCount
        let holding = activeWorkerCount
        return Metrics(
            workers: workers.map { worker in
                let counters = worker.counters
                return WorkerMetrics(
                    index: worker.index, jobsRun: counters.jobsRun.current, stealAttempts: counters.stealAttempts.current,
                    steals: counters.steals.current, parks: counters.parks.current, unparks: counters.unparks.current,
                    lifoHits: counters.lifoHits.current, injectPops: counters.injectPops.current,
                    localQueueDepth: worker.queue.count)
            },
            blockingRunning: running, blockingWaiting: waiting, threadsAlive: alive,
            backupThreadsAlive: max(0, alive - holding), injectQueueDepth: inject.count)
    }
}
