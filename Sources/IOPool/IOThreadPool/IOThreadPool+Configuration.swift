import Logging

extension IOThreadPool {
    /// How to build an ``IOThreadPool``.
    public struct Configuration: Sendable {
        /// Number of threads (event loops). Default: the CPUs this process may use (affinity mask,
        /// capped by a cgroup v2 CPU quota), ``TaskPoolConfiguration/defaultThreadCount``. Must be
        /// at least 1.
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
        /// Where the pool reports its rare events; never called per job, poll or message. Default:
        /// a logger that discards everything. The pool adds the metadata `iopool.pool` (its name,
        /// e.g. `IOThreadPool(iopool-*)`) and `iopool.pool-kind` (`IOThreadPool`); each event adds
        /// `iopool.thread` and `iopool.thread-index` (the IOThread, or the OS thread's name):
        /// - debug: "pool thread started" / "pool thread stopped", once per loop thread;
        /// - warning: "accept backing off" (`iopool.errno`, `iopool.operation`) when an accept on
        ///   this pool's threads runs out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
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
            threadNamePrefix: String = "iopool-",
            maxBlocking: Int = 512,
            stackSize: Int? = nil,
            afterStart: (@Sendable (Int) -> Void)? = nil,
            beforeStop: (@Sendable (Int) -> Void)? = nil,
            logger: Logger = Logger(label: "iopool", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.threadCount = threadCount
            self.threadNamePrefix = threadNamePrefix
            self.maxBlocking = maxBlocking
            self.stackSize = stackSize
            self.afterStart = afterStart
            self.beforeStop = beforeStop
            self.logger = logger
        }

        /// Every setting at its default.
        public init() {
            self.init(threadCount: Configuration.defaultThreadCount)
        }
    }
}
