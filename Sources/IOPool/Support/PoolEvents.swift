import CIOPoolShims
import Logging
import Synchronization
import SystemPackage

/// The one place a pool reports its rare events to its ``IOThreadPool/Configuration/logger`` (or
/// ``WorkStealingPool/Configuration/logger``): thread start and stop, accept back-off, the blocking
/// budget running out, and work that reached a stopped pool.
///
/// ## Design
///
/// - Rare events only, never per job, poll or message: every method here is called on a path that
///   already waits (a back-off sleep, a blocking section's line), starts or stops a thread, or runs
///   after the pool has stopped. The echo loop's path calls none of them (see `PoolLoggingTests`).
/// - Each event says which pool (`iopool.pool`, `iopool.pool-kind`) and which thread
///   (`iopool.thread`, and `iopool.thread-index` for an IOThread) as structured metadata, so a log
///   backend can filter by them; messages are fixed strings.
/// - Events that can repeat while a condition lasts are logged once per transition: the blocking
///   budget when its line of waiting tasks goes from empty to non-empty, an accept back-off once per
///   `accept()` that backs off (and once more when it recovers), forwarded work once per pool.
final class PoolEvents: Sendable {
    /// Metadata keys of every event (documented on the configurations' `logger`).
    enum Key {
        static let pool = "iopool.pool"
        static let poolKind = "iopool.pool-kind"
        static let thread = "iopool.thread"
        static let threadIndex = "iopool.thread-index"
        static let errno = "iopool.errno"
        static let operation = "iopool.operation"
        static let limit = "iopool.blocking-limit"
        static let running = "iopool.blocking-running"
        static let backoffs = "iopool.backoffs"
    }

    /// A logger that discards everything: the configurations' default.
    static let discardingLogger = Logger(label: "iopool", factory: { _ in SwiftLogNoOpLogHandler() })

    /// For contexts without a configurable logger: off-pool blocking, the default pool.
    static let discarding = PoolEvents(logger: discardingLogger, poolName: "none", poolKind: "none")

    let logger: Logger
    private let reportedForwarding = Atomic<Bool>(false)

    init(logger: Logger, poolName: String, poolKind: String) {
        var logger = logger
        logger[metadataKey: Key.pool] = .string(poolName)
        logger[metadataKey: Key.poolKind] = .string(poolKind)
        self.logger = logger
    }

    /// The events of the pool whose thread runs the caller; ``discarding`` off-pool.
    static var current: PoolEvents {
        switch ExecutionContext.current {
        case .ioThread(let thread): thread.events
        case .workStealingPool(let pool): pool.events
        case .elsewhere: discarding
        }
    }

    // MARK: Events

    func threadStarted(name: String, index: Int? = nil) {
        logger.debug("pool thread started", metadata: Self.threadMetadata(name: name, index: index))
    }

    func threadStopped(name: String, index: Int? = nil) {
        logger.debug("pool thread stopped", metadata: Self.threadMetadata(name: name, index: index))
    }

    /// A job reached the pool after it stopped and runs on the default pool instead. Logged for the
    /// first such job of the pool only: a task that outlives its pool forwards at every hop.
    /// One relaxed load per forwarded job once reported; the thread's name is read only for the
    /// record.
    func workForwardedAfterStop(thread name: @autoclosure () -> String, index: Int? = nil) {
        guard !reportedForwarding.load(ordering: .relaxed),
            !reportedForwarding.exchange(true, ordering: .relaxed)
        else { return }
        logger.notice(
            "work reached the pool after it stopped; it runs on IOThreadPool.default (logged once per pool)",
            metadata: Self.threadMetadata(name: name(), index: index))
    }

    /// A `blocking { }` section has to wait in line: the line was empty before it.
    func blockingBudgetExhausted(limit: Int, running: Int) {
        var metadata = Self.callerThreadMetadata()
        metadata[Key.limit] = .stringConvertible(limit)
        metadata[Key.running] = .stringConvertible(running)
        logger.warning("blocking budget exhausted: blocking sections wait in line (maxBlocking)", metadata: metadata)
    }

    /// An accept failed for lack of descriptors or memory and backs off (first back-off of one
    /// `accept()` call).
    func acceptBackingOff(_ errno: Errno, operation: String) {
        var metadata = Self.callerThreadMetadata()
        metadata[Key.errno] = .string("\(errno) (\(errno.rawValue))")
        metadata[Key.operation] = .string(operation)
        logger.warning("accept backing off: out of descriptors or memory", metadata: metadata)
    }

    /// An `accept()` that backed off accepted a connection.
    func acceptRecovered(afterBackoffs backoffs: Int, operation: String) {
        var metadata = Self.callerThreadMetadata()
        metadata[Key.backoffs] = .stringConvertible(backoffs)
        metadata[Key.operation] = .string(operation)
        logger.info("accept recovered after backing off", metadata: metadata)
    }

    // MARK: Metadata

    private static func threadMetadata(name: String, index: Int?) -> Logger.Metadata {
        var metadata: Logger.Metadata = [Key.thread: .string(name)]
        if let index { metadata[Key.threadIndex] = .stringConvertible(index) }
        return metadata
    }

    /// The calling thread: its IOThread (name and index) if it runs one, else its OS thread name.
    private static func callerThreadMetadata() -> Logger.Metadata {
        if let thread = IOThread.current { return threadMetadata(name: thread.name, index: thread.index) }
        return threadMetadata(name: currentOSThreadName(), index: nil)
    }

    static func currentOSThreadName() -> String {
        var buffer = [CChar](repeating: 0, count: PThread.maxNameBytes + 1)
        guard ciopool_get_thread_name(&buffer, UInt(buffer.count)) == 0 else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
