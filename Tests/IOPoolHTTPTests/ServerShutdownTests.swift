import Glibc
import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import IOPoolHTTP
import Synchronization
import Testing

/// Graceful shutdown (stop accepting, finish what is in flight with `Connection: close`, close
/// idle connections, then `serve` returns), cancellation, and the connection limit.
@Suite(.timeLimit(.minutes(1)))
struct ServerShutdownTests {
    /// Polls `condition` (a test's view of another task's progress), at most `limit`. Generous:
    /// in the whole suite, other tests can keep Swift's two global-executor threads (where this
    /// polls and the test's client runs) busy for over ten seconds.
    static func eventually(within limit: Duration = .seconds(30), _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while !condition() {
            if ContinuousClock.now > deadline { return false }
            try await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// A count shared with escaping closures.
    final class Tally: Sendable {
        let value = Atomic<Int>(0)
    }

    /// A responder that holds each `/slow` request until `release` is set.
    final class Gate: Sendable {
        let entered = Atomic<Int>(0)
        let released = Atomic<Bool>(false)

        nonisolated(nonsending) func respond(_ request: HTTPRequest, _ body: HTTPRequestBody, _ writer: HTTPResponseWriter) async throws {
            if request.path == "/slow" {
                entered.add(1, ordering: .relaxed)
                while !released.load(ordering: .acquiring) { try await IOPool.sleep(for: .milliseconds(2)) }
            }
            try await writer.respond(HTTPResponse(status: .ok), body: Array((request.path ?? "").utf8))
        }
    }

    @Test(arguments: ServerPool.allCases)
    func idleConnectionsAreClosedAndServeReturns(pool: ServerPool) async throws {
        let gate = Gate()
        let server = try await RunningServer.start(on: pool, gate.respond)
        var clients: [TestClient] = []
        for index in 0..<4 {
            let client = try await server.connect()
            try await client.send("GET /\(index) HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try await client.response().text == "/\(index)")
            clients.append(client)
        }
        // A connection that never sent a byte is idle too.
        clients.append(try await server.connect())
        #expect(try await Self.eventually { server.server.openConnectionCount == 5 })
        try await server.stop(within: .seconds(5))
        for client in clients { #expect(try await client.isClosed()) }
    }

    @Test(arguments: ServerPool.allCases)
    func aRequestInFlightFinishesWithConnectionCloseAndTheRestIsNotServed(pool: ServerPool) async throws {
        let gate = Gate()
        let server = try await RunningServer.start(on: pool, gate.respond)
        let client = try await server.connect()
        try await client.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await Self.eventually { gate.entered.load(ordering: .relaxed) == 1 })
        server.server.beginGracefulShutdown()
        // The listener is closed at once: nobody new gets in.
        await #expect(throws: IOError.self) { _ = try await TCPStream.connect(to: server.address) }
        gate.released.store(true, ordering: .releasing)
        let response = try await client.response()
        #expect(response.text == "/slow")
        #expect(response.closes)
        #expect(try await client.isClosed())
        try await server.waitForServe(within: .seconds(5))
    }

    @Test(arguments: ServerPool.allCases)
    func serveWaitsForTheRequestsInFlight(pool: ServerPool) async throws {
        let gate = Gate()
        let server = try await RunningServer.start(on: pool, gate.respond)
        let client = try await server.connect()
        try await client.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await Self.eventually { gate.entered.load(ordering: .relaxed) == 1 })
        server.server.beginGracefulShutdown()
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.server.openConnectionCount == 1)
        gate.released.store(true, ordering: .releasing)
        #expect(try await client.response().text == "/slow")
        try await server.waitForServe(within: .seconds(5))
        #expect(server.server.openConnectionCount == 0)
    }

    @Test(arguments: ServerPool.allCases)
    func cancellingServeClosesEveryConnection(pool: ServerPool) async throws {
        let gate = Gate()
        let server = try await RunningServer.start(on: pool, gate.respond)
        let busy = try await server.connect()
        try await busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        let idle = try await server.connect()
        #expect(try await Self.eventually { gate.entered.load(ordering: .relaxed) == 1 && server.server.openConnectionCount == 2 })
        server.cancel()
        #expect(try await idle.isClosed())
        gate.released.store(true, ordering: .releasing)  // its write fails: the socket is closed
        #expect(try await busy.isClosed())
        await #expect(throws: CancellationError.self) { try await server.waitForServe(within: .seconds(5)) }
    }

    @Test(arguments: ServerPool.allCases)
    func atTheConnectionLimitTheNextConnectionWaitsForAFreeSlot(pool: ServerPool) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.maxConnections = 1
        let gate = Gate()
        // Two threads, two listeners on an IOThreadPool: the limit is the server's, whichever
        // listener the second connection lands on.
        let server = try await RunningServer.start(HTTPServer(configuration: configuration, responder: HTTPHandler(gate.respond)), on: pool)
        let first = try await server.connect()
        try await first.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await first.response().text == "/one")
        let second = try await server.connect()  // the kernel completes it; the server does not take it yet
        try await second.send("GET /two HTTP/1.1\r\nHost: a\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        #expect(server.server.openConnectionCount == 1)
        first.close()
        #expect(try await second.response().text == "/two")
        second.close()
        try await server.stop()
    }

    /// Clients that all arrive at once, on both listeners of an IOThreadPool: never more than
    /// `maxConnections` are open, and every client is served in turn.
    @Test(arguments: ServerPool.allCases)
    func theConnectionLimitHoldsWhenManyArriveAtOnce(pool: ServerPool) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.maxConnections = 3
        let open = Tally()
        let mostOpen = Tally()
        let server = try await RunningServer.start(on: pool, configuration: configuration) { _, _, writer in
            let now = open.value.add(1, ordering: .relaxed).newValue
            var seen = mostOpen.value.load(ordering: .relaxed)
            while now > seen, !mostOpen.value.compareExchange(expected: seen, desired: now, ordering: .relaxed).exchanged {
                seen = mostOpen.value.load(ordering: .relaxed)
            }
            try await IOPool.sleep(for: .milliseconds(10))
            open.value.subtract(1, ordering: .relaxed)
            try await writer.respond(HTTPResponse(status: .ok, headerFields: [.connection: "close"]), body: Array("ok".utf8))
        }
        let address = server.address
        let clients = (0..<30).map { _ in
            Task {
                let client = TestClient(try await TCPStream.connect(to: address))
                defer { client.close() }
                try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                return try await client.response().text
            }
        }
        for client in clients { #expect(try await client.value == "ok") }
        #expect(mostOpen.value.load(ordering: .relaxed) <= 3)
        #expect(mostOpen.value.load(ordering: .relaxed) >= 2, "the clients did not overlap: the test tested nothing")
        try await server.stop()
    }

    /// Two thousand keep-alive connections open at once, each with a request answered; then a
    /// graceful shutdown closes every one of them and `serve` returns.
    @Test(arguments: ServerPool.allCases)
    func twoThousandOpenConnectionsAreServedAndShutDown(pool: ServerPool) async throws {
        guard ensureDescriptorLimit(atLeast: 4_200) else { return }
        let server = try await RunningServer.start(on: pool) { request, _, writer in
            try await writer.respond(HTTPResponse(status: .ok), body: Array((request.path ?? "").utf8))
        }
        var clients: [TestClient] = []
        for _ in 0..<2_000 { clients.append(try await server.connect()) }
        for (index, client) in clients.enumerated() { try await client.send("GET /\(index) HTTP/1.1\r\nHost: a\r\n\r\n") }
        for (index, client) in clients.enumerated() { #expect(try await client.response().text == "/\(index)") }
        #expect(server.server.openConnectionCount == 2_000)
        try await server.stop(within: .seconds(20))
        var closed = 0
        for client in clients where try await client.isClosed() { closed += 1 }
        #expect(closed == 2_000)
    }

    /// Many clients mid-conversation when shutdown begins: every response that arrives is whole,
    /// every connection ends closed, and `serve` returns.
    @Test(arguments: ServerPool.allCases)
    func shutdownUnderLoadLosesNoResponseAndEnds(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { request, body, writer in
            let bytes = try await body.collect(upTo: 1 << 16)
            try await writer.respond(HTTPResponse(status: .ok), body: bytes)
        }
        let address = server.address
        let answeredSoFar = Tally()
        let clients = (0..<32).map { index in
            Task { () -> (answered: Int, sawClose: Bool) in
                let client = TestClient(try await TCPStream.connect(to: address))
                defer { client.close() }
                var answered = 0
                for request in 0..<1_000 {
                    let payload = "\(index)-\(request)"
                    do {
                        try await client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(payload.utf8.count)\r\n\r\n\(payload)")
                    } catch {
                        return (answered, true)  // the server closed between two requests
                    }
                    let response: ReceivedResponse
                    do {
                        response = try await client.response()
                    } catch let failure as TestFailure where failure.description.hasPrefix("end of stream inside a line: \"\"") {
                        return (answered, true)  // closed before this request was read
                    }
                    guard response.status == 200, response.text == payload else { throw TestFailure("wrong answer \(response) to \(payload)") }
                    answered += 1
                    answeredSoFar.value.add(1, ordering: .relaxed)
                    if response.closes {
                        return (answered, try await client.isClosed())
                    }
                }
                return (answered, false)
            }
        }
        // Mid-conversation: some answers are in, and (at 1,000 requests each) most are not.
        #expect(try await Self.eventually(within: .seconds(30)) { answeredSoFar.value.load(ordering: .relaxed) >= 100 })
        try await server.stop(within: .seconds(10))
        var total = 0
        for client in clients {
            let (answered, sawClose) = try await client.value
            #expect(sawClose)
            total += answered
        }
        #expect(total >= 100)
        #expect(total < 32_000, "shutdown came after every client had finished: the test tested nothing")
    }
}
