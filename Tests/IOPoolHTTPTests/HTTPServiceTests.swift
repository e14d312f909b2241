import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import IOPoolHTTP
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle
import Testing

/// `HTTPService` in a ServiceGroup of [pool, http]: the group's graceful shutdown finishes the
/// request in flight with `Connection: close`, closes idle connections, and the group returns;
/// cancellation closes every connection.
@Suite(.timeLimit(.minutes(1)))
struct HTTPServiceTests {
    struct Setup {
        let group: ServiceGroup
        let address: SocketAddress
        let gate: ServerShutdownTests.Gate
    }

    static func setup(_ pool: ServerPool) throws -> Setup {
        let gate = ServerShutdownTests.Gate()
        let server = HTTPServer(responder: HTTPHandler(gate.respond))
        let logger = Logger(label: "HTTPServiceTests")
        let poolService: any Service
        let http: HTTPService
        let address: SocketAddress
        switch pool {
        case .ioThreads:
            let pool = try IOThreadPool(configuration: .init(threadCount: 2))
            let listeners = try pool.listenOnEveryThread(.loopbackIPv4(port: 0))
            address = try listeners[0].localAddress
            http = HTTPService(server, listeners: listeners, on: pool)
            poolService = pool
        case .workStealing:
            let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            address = try listener.localAddress
            http = HTTPService(server, listener: listener, on: pool)
            poolService = pool
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: poolService), .init(service: http)], logger: logger))
        return Setup(group: group, address: address, gate: gate)
    }

    @Test(arguments: ServerPool.allCases)
    func gracefulShutdownOfTheGroupFinishesTheRequestInFlightAndReturns(pool: ServerPool) async throws {
        let setup = try Self.setup(pool)
        let running = Task { try await setup.group.run() }
        defer { running.cancel() }
        let idle = TestClient(try await TCPStream.connect(to: setup.address))
        let busy = TestClient(try await TCPStream.connect(to: setup.address))
        try await busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await ServerShutdownTests.eventually { setup.gate.entered.load(ordering: .relaxed) == 1 })

        await setup.group.triggerGracefulShutdown()
        #expect(try await idle.isClosed())
        setup.gate.released.store(true, ordering: .releasing)
        let response = try await busy.response()
        #expect(response.text == "/slow")
        #expect(response.closes)
        try await running.value
    }

    @Test(arguments: ServerPool.allCases)
    func cancellingTheGroupClosesEveryConnection(pool: ServerPool) async throws {
        let setup = try Self.setup(pool)
        let running = Task { try await setup.group.run() }
        let busy = TestClient(try await TCPStream.connect(to: setup.address))
        try await busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await ServerShutdownTests.eventually { setup.gate.entered.load(ordering: .relaxed) == 1 })
        running.cancel()
        #expect(try await busy.isClosed())
        setup.gate.released.store(true, ordering: .releasing)
        let result = await running.result
        #expect(throws: CancellationError.self) { try result.get() }
    }
}
