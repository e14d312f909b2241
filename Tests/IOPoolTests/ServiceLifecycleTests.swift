@_spi(IOPoolSupport) import IOPool
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle
import Testing

/// Both pools as swift-service-lifecycle services in a ServiceGroup of [pool, server]: the order the
/// README documents (the pool first, so that it stops last). A graceful shutdown stops the server,
/// then the pool drains the connections on it; cancellation, or the group's grace period passing,
/// shuts the pool down at once (its tasks are cancelled) and ends with `CancellationError`.
@Suite(.timeLimit(.minutes(1))) struct ServiceLifecycleTests {
    @Test(arguments: [LifecyclePoolKind.io, .stealing])
    func gracefulShutdownStopsTheServerFirstThenThePoolDrainsItsConnections(kind: LifecyclePoolKind) async throws {
        let setup = try LifecycleSetup(kind)
        let running = Task { try await setup.group.run() }
        defer { running.cancel() }
        let client = try await setup.connectAndEcho()
        defer { client.close() }

        await setup.group.triggerGracefulShutdown()
        try await setup.journal.waitFor("server returned")
        #expect(setup.journal.entries == ["server returned"], "the pool waits for the open connection")
        // Still served while the pool drains; the client's half-close ends the connection.
        try await client.write([2])
        #expect(try await readExactly(client, 1) == [2])
        #expect(setup.pool.liveTaskCount == 1)
        try client.shutdown(.write)
        #expect(try await client.read(maxBytes: 1) == [])

        try await running.value
        #expect(setup.journal.entries == ["server returned", "connection ended", "pool returned"])
        #expect(setup.pool.refusesSpawns, "the pool has shut down")
    }

    @Test(arguments: [LifecyclePoolKind.io, .stealing])
    func cancellationShutsThePoolDownAtOnce(kind: LifecyclePoolKind) async throws {
        let setup = try LifecycleSetup(kind)
        let running = Task { try await setup.group.run() }
        let client = try await setup.connectAndEcho()
        defer { client.close() }

        running.cancel()
        let result = await running.result
        #expect(isCancellation(result), "\(result)")
        #expect(Set(setup.journal.entries) == ["server returned", "connection ended", "pool threw CancellationError"])
        #expect(setup.journal.entries.last == "pool threw CancellationError", "the pool's shutdown waits for its cancelled tasks")
        #expect(try await client.read(maxBytes: 1) == [], "the cancelled connection was closed")
        #expect(setup.pool.liveTaskCount == 0)
        #expect(setup.pool.refusesSpawns)
    }

    @Test(arguments: [LifecyclePoolKind.io, .stealing])
    func theGracePeriodPassingEscalatesToAnImmediateShutdown(kind: LifecyclePoolKind) async throws {
        let setup = try LifecycleSetup(kind, maximumGracefulShutdownDuration: .milliseconds(200))
        let running = Task { try await setup.group.run() }
        defer { running.cancel() }
        let client = try await setup.connectAndEcho()  // never ends: the drain cannot finish
        defer { client.close() }

        await setup.group.triggerGracefulShutdown()
        let result = await running.result
        #expect(isCancellation(result), "\(result)")
        #expect(setup.journal.entries == ["server returned", "connection ended", "pool threw CancellationError"])
        #expect(try await client.read(maxBytes: 1) == [], "the cancelled connection was closed")
        #expect(setup.pool.refusesSpawns)
    }
}

// MARK: - Support

enum LifecyclePoolKind: String, Sendable, CustomTestStringConvertible {
    case io, stealing
    var testDescription: String { rawValue }
}

/// A pool of either kind, its echo server, and the group [pool, server], each journaled.
private struct LifecycleSetup {
    let pool: LifecyclePool
    let journal = Journal()
    let address: SocketAddress
    let group: ServiceGroup

    init(_ kind: LifecyclePoolKind, maximumGracefulShutdownDuration: Duration? = nil) throws {
        pool = try LifecyclePool(kind)
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        address = try listener.localAddress
        let server = EchoServerService(listener: listener, pool: pool, journal: journal)
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: Journaled(inner: pool.service, name: "pool", journal: journal)),
                .init(service: Journaled(inner: server, name: "server", journal: journal)),
            ],
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        configuration.maximumGracefulShutdownDuration = maximumGracefulShutdownDuration
        group = ServiceGroup(configuration: configuration)
    }

    /// A connection the server is serving (it echoed a byte).
    func connectAndEcho() async throws -> TCPStream {
        let client = try await TCPStream.connect(to: address)
        try await client.write([1])
        #expect(try await readExactly(client, 1) == [1])
        return client
    }
}

/// Accepts on the pool until the group shuts it down (gracefully or by cancellation), spawning
/// each connection onto the pool, as `iopool echo-server` does.
private struct EchoServerService: Service {
    let listener: TCPListener
    let pool: LifecyclePool
    let journal: Journal

    func run() async throws {
        let (listener, pool, journal) = (self.listener, self.pool, self.journal)
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await pool.spawn {
                    do {
                        for try await connection in listener.connections {
                            _ = try pool.spawn {
                                defer { connection.close() }
                                _ = try? await copy(from: connection, to: connection)
                                try? connection.shutdown(.write)
                                journal.add("connection ended")
                            }
                        }
                    } catch {
                        // EBADF: the listener was closed by the shutdown.
                    }
                }.value
            } onGracefulShutdown: {
                listener.close()
            }
        } onCancel: {
            listener.close()
        }
    }
}

/// Runs a service and notes how it ended.
private struct Journaled: Service {
    let inner: any Service
    let name: String
    let journal: Journal

    func run() async throws {
        do {
            try await inner.run()
            journal.add("\(name) returned")
        } catch {
            journal.add("\(name) threw \(type(of: error))")
            throw error
        }
    }
}

final class Journal: Sendable {
    private let lines = Locked<[String]>([])
    var entries: [String] { lines.withLock { $0 } }
    func add(_ line: String) { lines.withLock { $0.append(line) } }

    /// Waits (bounded by the suite's time limit) until `line` has been added.
    func waitFor(_ line: String) async throws {
        while !entries.contains(line) { try await Task.sleep(for: .milliseconds(1)) }
    }
}

private enum LifecyclePool: Sendable {
    case io(IOThreadPool)
    case stealing(WorkStealingPool)

    init(_ kind: LifecyclePoolKind) throws {
        switch kind {
        case .io: self = .io(try IOThreadPool(configuration: .init(threadCount: 2)))
        case .stealing: self = .stealing(try WorkStealingPool(configuration: .init(threadCount: 2)))
        }
    }

    var service: any Service {
        switch self {
        case .io(let pool): pool
        case .stealing(let pool): pool
        }
    }

    func spawn<Success: Sendable>(_ operation: sending @escaping () async throws -> Success) throws -> Task<Success, any Error> {
        switch self {
        case .io(let pool): try pool.spawn(operation)
        case .stealing(let pool): try pool.spawn(operation)
        }
    }

    var liveTaskCount: Int {
        switch self {
        case .io(let pool): pool.liveTaskCount
        case .stealing(let pool): pool.liveTaskCount
        }
    }

    var refusesSpawns: Bool { (try? spawn { () async throws in }) == nil }
}
