extension WorkStealingPool {
    /// How to build a ``WorkStealingPool``.
    public struct Configuration: Sendable {
        /// Number of workers (threads running jobs at once, blocking sections aside). Default: the
        /// CPUs this process may use. Must be at least 1.
        public var threadCount: Int
        /// Most `blocking { }` sections running at once on this pool's workers; later ones wait,
        /// first come first served (a waiting task that is cancelled, e.g. by ``WorkStealingPool/shutdown()``,
        /// leaves the line and throws `CancellationError`). Default 512, as tokio's
        /// `max_blocking_threads`. Must be at least 1.
        public var maxBlocking: Int
        /// How long a backup thread (one that finished a blocking section, or an idle one) waits for
        /// a worker to take over before it exits. Default 10 s, as tokio's `thread_keep_alive`.
        public var keepAlive: Duration
        /// Threads are named `threadNamePrefix` + a 1-based thread number, truncated to 15 bytes.
        public var threadNamePrefix: String
        /// Stack size of each thread in bytes; `nil` keeps the system default.
        public var stackSize: Int?
        /// Runs on every OS thread the pool starts (workers and backup threads), before it runs anything.
        public var afterStart: (@Sendable () -> Void)?
        /// Runs on every OS thread the pool started, just before it exits.
        public var beforeStop: (@Sendable () -> Void)?

        public init(
            threadCount: Int = IOThreadPool.Configuration.defaultThreadCount,
            maxBlocking: Int = 512,
            keepAlive: Duration = .seconds(10),
            threadNamePrefix: String = "iopool-ws-",
            stackSize: Int? = nil,
            afterStart: (@Sendable () -> Void)? = nil,
            beforeStop: (@Sendable () -> Void)? = nil
        ) {
            self.threadCount = threadCount
            self.maxBlocking = maxBlocking
            self.keepAlive = keepAlive
            self.threadNamePrefix = threadNamePrefix
            self.stackSize = stackSize
            self.afterStart = afterStart
            self.beforeStop = beforeStop
        }
    }
}
