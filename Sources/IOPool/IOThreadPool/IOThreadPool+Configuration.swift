extension IOThreadPool {
    /// How to build an ``IOThreadPool``.
    public struct Configuration: Sendable {
        /// Number of threads (event loops). Default: the CPUs this process may use (affinity mask,
        /// capped by a cgroup v2 CPU quota). Must be at least 1.
        public var threadCount: Int
        /// Threads are named `threadNamePrefix` + 1-based index (e.g. `iopool-1`), truncated to the
        /// 15 bytes Linux allows.
        public var threadNamePrefix: String
        /// Most `blocking { }` sections running at once on this pool's threads; later ones wait,
        /// first come first served (a waiting task that is cancelled, e.g. by ``IOThreadPool/shutdown()``,
        /// leaves the line and throws `CancellationError`). Each section hands its loop to another
        /// thread, so this bounds those threads too. Per pool, as ``WorkStealingPool/Configuration/maxBlocking``;
        /// code outside any pool has ``OffPoolBlocking/maxBlocking``. Default 512, as tokio's
        /// `max_blocking_threads`. Must be at least 1.
        public var maxBlocking: Int
        /// Stack size of each thread in bytes; `nil` keeps the system default.
        public var stackSize: Int?
        /// Runs on each pool thread before its loop starts, given the thread's 0-based index; also
        /// on a thread that takes a loop over when `blocking { }` hands it off.
        public var afterStart: (@Sendable (Int) -> Void)?
        /// Runs on each pool thread after its loop has stopped, given the thread's 0-based index;
        /// also on a thread that handed its loop off, once its blocking call has returned.
        public var beforeStop: (@Sendable (Int) -> Void)?

        public init(
            threadCount: Int = IOThreadPool.Configuration.defaultThreadCount,
            threadNamePrefix: String = "iopool-",
            maxBlocking: Int = 512,
            stackSize: Int? = nil,
            afterStart: (@Sendable (Int) -> Void)? = nil,
            beforeStop: (@Sendable (Int) -> Void)? = nil
        ) {
            self.threadCount = threadCount
            self.threadNamePrefix = threadNamePrefix
            self.maxBlocking = maxBlocking
            self.stackSize = stackSize
            self.afterStart = afterStart
            self.beforeStop = beforeStop
        }

        /// The CPUs this process may use: `sched_getaffinity`, capped by cgroup v2 `cpu.max`.
        public static var defaultThreadCount: Int { ProcessorCount.available }
    }
}
