extension IOThreadPool {
    /// A point-in-time copy of an ``IOThreadPool``'s pool-wide figures; the per-thread counters are
    /// ``IOThreadPool/metrics`` (``IOThread/Metrics``).
    public struct PoolMetrics: Sendable, Hashable, CustomStringConvertible {
        /// Tasks spawned on the pool that have not finished (``IOThreadPool/liveTaskCount``).
        public var liveTasks: Int
        /// `blocking { }` sections holding a unit of the pool's capacity now
        /// (``IOThreadPool/Configuration/maxBlocking``).
        public var blockingRunning: Int
        /// `blocking { }` sections waiting for a unit of capacity now.
        public var blockingWaiting: Int

        public var description: String {
            "tasks=\(liveTasks) blocking running=\(blockingRunning) waiting=\(blockingWaiting)"
        }
    }

    /// The pool-wide figures now. Any thread; takes the blocking capacity's lock briefly.
    public var poolMetrics: PoolMetrics {
        let (running, waiting) = threads[0].blockingCapacity.snapshot
        return PoolMetrics(liveTasks: accounting.liveCount, blockingRunning: running, blockingWaiting: waiting)
    }
}
