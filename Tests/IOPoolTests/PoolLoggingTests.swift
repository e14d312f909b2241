import Dispatch
import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import Logging
import Testing

/// The pools' rare events reach the `logger` of their configuration once each, with their
/// metadata (pool, kind, thread), and the hot echo path logs nothing. The EMFILE accept back-off is
/// tested end to end in the CLI package's AcceptOutOfDescriptorsTests (the CLI's logger on stderr):
/// running a process out of descriptors would disturb the tests running beside these.
@Suite(.timeLimit(.minutes(1))) struct PoolLoggingTests {
    @Test func ioThreadPoolLogsEachThreadStartAndStopOnceWithItsMetadata() async throws {
        let records = LogRecords()
        let pool = try IOThreadPool(configuration: .init(threadCount: 2, threadNamePrefix: "log-io-", logger: records.logger()))
        await pool.shutdownGracefully()
        let started = records.matching("pool thread started")
        let stopped = records.matching("pool thread stopped")
        #expect(started.count == 2 && stopped.count == 2, "\(records.all)")
        for (index, record) in started.sorted(by: { $0.metadata["iopool.thread-index"] ?? "" < $1.metadata["iopool.thread-index"] ?? "" }).enumerated() {
            #expect(record.level == .debug)
            #expect(record.metadata["iopool.pool"] == "IOThreadPool(log-io-*)")
            #expect(record.metadata["iopool.pool-kind"] == "IOThreadPool")
            #expect(record.metadata["iopool.thread"] == "log-io-\(index + 1)")
            #expect(record.metadata["iopool.thread-index"] == "\(index)")
        }
        #expect(Set(stopped.compactMap { $0.metadata["iopool.thread"] }) == ["log-io-1", "log-io-2"])
    }

    @Test func workStealingPoolLogsEachThreadStartAndStopOnceWithItsMetadata() async throws {
        let records = LogRecords()
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, threadNamePrefix: "log-ws-", logger: records.logger()))
        // Work for both workers, so that both threads start (the second starts on demand).
        let tasks = try (0..<8).map { _ in try pool.spawn { _ = usleep(1_000) } }
        for task in tasks { await task.value }
        await pool.shutdownGracefully()
        let started = records.matching("pool thread started")
        let stopped = records.matching("pool thread stopped")
        #expect(!started.isEmpty && started.count == stopped.count, "\(records.all)")
        for record in started + stopped {
            #expect(record.level == .debug)
            #expect(record.metadata["iopool.pool"] == "WorkStealingPool(log-ws-*)")
            #expect(record.metadata["iopool.pool-kind"] == "WorkStealingPool")
            #expect(record.metadata["iopool.thread"]?.hasPrefix("log-ws-") == true, "\(record)")
        }
        #expect(Set(started.compactMap { $0.metadata["iopool.thread"] }).count == started.count, "one record per thread")
    }

    /// maxBlocking 1, one section running and three waiting: one warning (the line went from empty
    /// to non-empty once), not three; a second exhaustion after the line emptied logs again.
    @Test(arguments: [LoggedPoolKind.io, .stealing])
    func blockingBudgetExhaustionLogsOncePerTransition(kind: LoggedPoolKind) async throws {
        let records = LogRecords()
        let pool = try LoggedPool(kind, prefix: "log-bb-", maxBlocking: 1, logger: records.logger())
        for round in 1...2 {
            let release = DispatchSemaphore(value: 0)
            let inside = Counter()
            let holder = try pool.spawn { try? await blocking { inside.increment(); release.wait() } }
            // Awaited, never a blocking wait: this test body runs on Swift's global executor.
            try await waitUntil { inside.count == 1 }
            let waiters = try (0..<3).map { _ in try pool.spawn { try? await blocking { } } }
            try await waitUntil { pool.blockingCapacity.snapshot.waiting == 3 }
            release.signal()
            await holder.value
            for waiter in waiters { await waiter.value }
            let exhausted = records.matching("blocking budget exhausted")
            #expect(exhausted.count == round, "\(records.all)")
        }
        for record in records.matching("blocking budget exhausted") {
            #expect(record.level == .warning)
            #expect(record.metadata["iopool.pool-kind"] == kind.poolKind)
            #expect(record.metadata["iopool.blocking-limit"] == "1")
            #expect(record.metadata["iopool.blocking-running"] == "1")
            #expect(record.metadata["iopool.thread"]?.isEmpty == false)
        }
        await pool.shutdownGracefully()
    }

    /// Jobs that reach a stopped pool run on IOThreadPool.default; the first is logged, once.
    @Test(arguments: [LoggedPoolKind.io, .stealing])
    func workForwardedAfterAStopLogsOncePerPool(kind: LoggedPoolKind) async throws {
        let records = LogRecords()
        let pool = try LoggedPool(kind, prefix: "log-fw-", maxBlocking: 4, logger: records.logger())
        await pool.shutdownGracefully()
        #expect(records.matching("work reached the pool after it stopped").isEmpty)
        for _ in 0..<3 {
            // A task that prefers the stopped pool: each of its jobs is forwarded.
            let ranOnDefault = await Task(executorPreference: pool.executor) { IOThread.current.map { current in IOThreadPool.default.threads.contains { $0 === current } } ?? false }.value
            #expect(ranOnDefault)
        }
        let forwarded = records.matching("work reached the pool after it stopped")
        #expect(forwarded.count == 1, "\(records.all)")
        #expect(forwarded.first?.level == .notice)
        #expect(forwarded.first?.metadata["iopool.pool-kind"] == kind.poolKind)
        #expect(forwarded.first?.metadata["iopool.thread"]?.isEmpty == false)
    }

    /// 2,000 echoed messages over loopback on a pool whose logger takes everything (trace): no
    /// record between the start of the threads and the shutdown.
    @Test(arguments: [LoggedPoolKind.io, .stealing])
    func aHotEchoLoopLogsNothing(kind: LoggedPoolKind) async throws {
        let records = LogRecords()
        let pool = try LoggedPool(kind, prefix: "log-hot-", maxBlocking: 4, logger: records.logger(level: .trace))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let server = try pool.spawn {
            guard let connection = try? await listener.accept() else { return }
            defer { connection.close() }
            _ = try? await copy(from: connection, to: connection)
        }
        // The one thread's start is logged from that thread, maybe after `init` returned.
        while records.matching("pool thread started").isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        let beforeEcho = records.all.count
        let client = try pool.spawnThrowing { () async throws -> Bool in
            let stream = try await TCPStream.connect(to: address)
            defer { stream.close() }
            for index in 0..<2_000 {
                let message = distinctMessage(index, count: 32)
                try await stream.write(message)
                guard try await readExactly(stream, message.count) == message else { return false }
            }
            try stream.shutdown(.write)
            return try await stream.read(maxBytes: 1).isEmpty
        }
        #expect(try await client.value)
        await server.value
        #expect(records.all.count == beforeEcho, "records during the echo: \(records.all)")
        listener.close()
        await pool.shutdownGracefully()
    }
}

// MARK: - Support

/// Records every log call, with the handler's metadata merged under the call's (as a backend sees them).
final class LogRecords: Sendable {
    struct Record: Sendable, CustomStringConvertible {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
        var description: String { "\(level) \(message) \(metadata)" }
    }
    private let records = Locked<[Record]>([])

    var all: [Record] { records.withLock { $0 } }
    func matching(_ prefix: String) -> [Record] { all.filter { $0.message.hasPrefix(prefix) } }
    fileprivate func append(_ record: Record) { records.withLock { $0.append(record) } }

    func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "test") { _ in CapturingLogHandler(records: self) }
        logger.logLevel = level
        return logger
    }
}

struct CapturingLogHandler: LogHandler {
    let records: LogRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        records.append(.init(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }
}

enum LoggedPoolKind: String, Sendable, CustomTestStringConvertible {
    case io, stealing
    var testDescription: String { rawValue }
    var poolKind: String { self == .io ? "IOThreadPool" : "WorkStealingPool" }
}

/// One of the two pools, behind what these tests use of them.
enum LoggedPool: Sendable {
    case io(IOThreadPool)
    case stealing(WorkStealingPool)

    init(_ kind: LoggedPoolKind, prefix: String, maxBlocking: Int, logger: Logger) throws {
        switch kind {
        case .io: self = .io(try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: prefix, maxBlocking: maxBlocking, logger: logger)))
        case .stealing: self = .stealing(try WorkStealingPool(configuration: .init(threadCount: 1, maxBlocking: maxBlocking, threadNamePrefix: prefix, logger: logger)))
        }
    }

    func spawn(_ operation: sending @escaping () async -> Void) throws -> Task<Void, Never> {
        switch self {
        case .io(let pool): try pool.spawn(operation)
        case .stealing(let pool): try pool.spawn(operation)
        }
    }

    func spawnThrowing<Success: Sendable>(_ operation: sending @escaping () async throws -> Success) throws -> Task<Success, any Error> {
        switch self {
        case .io(let pool): try pool.spawn(operation)
        case .stealing(let pool): try pool.spawn(operation)
        }
    }

    var executor: any TaskExecutor {
        switch self {
        case .io(let pool): pool.threads[0]
        case .stealing(let pool): pool
        }
    }

    var blockingCapacity: BlockingCapacity {
        switch self {
        case .io(let pool): pool.threads[0].blockingCapacity
        case .stealing(let pool): pool.capacity
        }
    }

    func shutdownGracefully() async {
        switch self {
        case .io(let pool): await pool.shutdownGracefully()
        case .stealing(let pool): await pool.shutdownGracefully()
        }
    }
}
