import Logging

extension WorkStealingPool {
    /// How to build a ``WorkStealingPool``.
    public struct Configuration: Sendable {
        /// Number of workers (threads running jobs at once, blocking sections aside). Default: the
        /// CPUs this process may use, ``TaskPoolConfiguration/defaultThreadCount``. Must be at least 1.
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
        /// Runs on every OS thread the pool starts (workers and backup threads), before it runs
        /// anything, given the thread's 0-based number in start order (one less than the number in
        /// its name). A thread holds no worker when it starts, so this is not a worker's index.
        public var afterStart: (@Sendable (Int) -> Void)?
        /// Runs on every OS thread the pool started, just before it exits, given the same number as
        /// ``afterStart``.
        public var beforeStop: (@Sendable (Int) -> Void)?
        /// Where the pool reports its rare events; never called per job, poll or message. Default:
        /// a logger that discards everything. The pool adds the metadata `iopool.pool` (its name,
        /// e.g. `WorkStealingPool(iopool-ws-*)`) and `iopool.pool-kind` (`WorkStealingPool`); each
        /// event adds `iopool.thread` (the OS thread's name):
        /// - debug: "pool thread started" / "pool thread stopped", once per OS thread the pool
        ///   starts (workers and backup threads, as ``afterStart`` and ``beforeStop``);
        /// - warning: "accept backing off" (`iopool.errno`, `iopool.operation`) when an accept on
        ///   this pool's workers runs out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
        ///   `ENOMEM`), once per `accept()` call that backs off; info "accept recovered" when it
        ///   then accepts (`iopool.backoffs`);
        /// - warning: "blocking budget exhausted" (`iopool.blocking-limit`, `iopool.blocking-running`)
        ///   when a `blocking { }` section has to wait for ``maxBlocking``, once each time the line of
        ///   waiting sections goes from empty to non-empty;
        /// - notice: "work reached the pool after it stopped", once per pool, for the first job
        ///   forwarded to ``IOThreadPool/default`` after shutdown.
        public var logger: Logger

        public init(
            threadCount: Int = Configuration.defaultThreadCount,
            maxBlocking: Int = 512,
            keepAlive: Duration = .seconds(10),
            threadNamePrefix: String = "iopool-ws-",
            stackSize: Int? = nil,
            afterStart: (@Sendable (Int) -> Void)? = nil,
            beforeStop: (@Sendable (Int) -> Void)? = nil,
            logger: Logger = Logger(label: "iopool", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.threadCount = threadCount
            self.maxBlocking = maxBlocking
            self.keepAlive = keepAlive
            self.threadNamePrefix = threadNamePrefix
            self.stackSize = stackSize
            self.afterStart = afterStart
            self.beforeStop = beforeStop
            self.logger = logger
        }

        /// Every setting at its default.
        public init() {
            self.init(threadCount: Configuration.defaultThreadCount)
        }

        /// The same, with hooks that take no thread number (as ``afterStart`` and ``beforeStop``
        /// were before both pools passed one): source compatibility for `afterStart: { ... }`.
        @_disfavoredOverload
        public init(
            threadCount: Int = Configuration.defaultThreadCount,
            maxBlocking: Int = 512,
            keepAlive: Duration = .seconds(10),
            threadNamePrefix: String = "iopool-ws-",
            stackSize: Int? = nil,
            afterStart: (@Sendable () -> Void)? = nil,
            beforeStop: (@Sendable () -> Void)? = nil,
            logger: Logger = Logger(label: "iopool", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.init(
                threadCount: threadCount, maxBlocking: maxBlocking, keepAlive: keepAlive,
                threadNamePrefix: threadNamePrefix, stackSize: stackSize,
                afterStart: afterStart.map { hook in { @Sendable _ in hook() } },
                beforeStop: beforeStop.map { hook in { @Sendable _ in hook() } }, logger: logger)
        }
    }
}
