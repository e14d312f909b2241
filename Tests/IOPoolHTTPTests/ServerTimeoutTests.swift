import Glibc
import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import IOPoolHTTP
import Testing

/// Slow and hostile clients cost bounded time: a head that trickles in, a body that stops, a
/// keep-alive connection left idle and a client that never reads each end the connection (with
/// 408 where an answer can still be written), and a timeout racing the data it waits for loses
/// no request and writes no half response.
@Suite(.timeLimit(.minutes(1)))
struct ServerTimeoutTests {
    /// Only the timeout under test is short, so that a slow machine (TSan, a loaded CI) cannot
    /// trip another one first.
    static func configuration(
        header: Duration = .seconds(30), body: Duration = .seconds(30), write: Duration = .seconds(30), idle: Duration = .seconds(30)
    ) -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        configuration.headerTimeout = header
        configuration.bodyTimeout = body
        configuration.writeTimeout = write
        configuration.idleTimeout = idle
        return configuration
    }

    nonisolated(nonsending) static func echo(_ request: HTTPRequest, _ body: HTTPRequestBody, _ writer: HTTPResponseWriter) async throws {
        let bytes = try await body.collect(upTo: 1 << 20)
        try await writer.respond(HTTPResponse(status: .ok), body: bytes.isEmpty ? Array((request.path ?? "").utf8) : bytes)
    }

    @Test(arguments: ServerPool.allCases)
    func aHeadThatTricklesInPastTheHeaderTimeoutGets408(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, configuration: Self.configuration(header: .milliseconds(300)), Self.echo)
        let client = try await server.connect()
        // Slowloris: a byte every 50 ms keeps each read short, and the head never ends. Only the
        // header timeout can answer it (without it, this waits for the test's time limit).
        let trickle = Task {
            for byte in "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".utf8 + Array(repeating: UInt8(ascii: "s"), count: 300) {
                try await client.send([byte])
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let response = try await client.response()
        trickle.cancel()
        #expect(response.status == 408)
        #expect(response.closes)
        #expect(try await client.isClosed())
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aBodyThatStopsGets408AndTheConnectionCloses(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, configuration: Self.configuration(body: .milliseconds(300)), Self.echo)
        let client = try await server.connect()
        try await client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly some")
        let response = try await client.response()
        #expect(response.status == 408)
        #expect(try await client.isClosed())
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func anIdleKeepAliveConnectionIsClosedWithoutAResponse(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, configuration: Self.configuration(idle: .milliseconds(500)), Self.echo)
        let client = try await server.connect()
        // Sent with the connect: the idle wait before the first request is what ends the test
        // otherwise, on a machine slow enough to take the whole timeout for the connect.
        try await client.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().text == "/first")
        // Nothing more is sent: the server closes, and writes nothing (no 408 to a connection
        // between requests, which a client could take for its next request's answer).
        #expect(try await client.isClosed(within: .seconds(5)))
        #expect(server.server.openConnectionCount == 0)
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aClientThatNeverReadsIsCutOffByTheWriteTimeout(pool: ServerPool) async throws {
        let big = [UInt8](repeating: 0x61, count: 32 << 20)  // far more than both socket buffers hold
        let failures = Locked<[String]>([])
        let started = Locked(false)
        let server = try await RunningServer.start(on: pool, configuration: Self.configuration(write: .milliseconds(300))) { _, _, writer in
            started.withLock { $0 = true }
            do {
                try await writer.writeHead(HTTPResponse(status: .ok))
                try await writer.write(big)
            } catch {
                failures.withLock { $0.append("\(error)") }
                throw error
            }
        }
        let client = try await server.connect()
        try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        // The client reads nothing; the server must give up on it and close its end.
        let deadline = ContinuousClock.now + .seconds(10)
        while !started.withLock({ $0 }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(started.withLock { $0 })
        while server.server.openConnectionCount > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(server.server.openConnectionCount == 0)
        #expect(failures.withLock { $0.count } == 1)
        client.close()
        try await server.stop()
    }

    /// The idle timeout fires about when the next request arrives, over and over: each request
    /// is either answered whole or its connection closed with nothing written — never a lost
    /// answer on a connection that stays open, never half a response.
    @Test(arguments: ServerPool.allCases)
    func anIdleTimeoutRacingTheNextRequestLosesNothing(pool: ServerPool) async throws {
        let timeout = Duration.milliseconds(20)
        let server = try await RunningServer.start(on: pool, configuration: Self.configuration(idle: timeout), Self.echo)
        var answered = 0
        var closed = 0
        for round in 0..<40 {
            let client = try await server.connect()
            // The first request races the idle timeout too (a slow machine can take 20 ms to
            // deliver it): the same two outcomes are allowed.
            try await client.send("GET /warm HTTP/1.1\r\nHost: a\r\n\r\n")
            guard try await Self.answeredOrClosedBeforeAnswering(client, "/warm") else {
                closed += 1
                client.close()
                continue
            }
            // Around the timeout (the sweeper's granularity is 5 ms): the race itself.
            try await Task.sleep(for: .milliseconds(14 + round % 12))
            do {
                try await client.send("GET /\(round) HTTP/1.1\r\nHost: a\r\n\r\n")
            } catch {
                closed += 1
                client.close()
                continue
            }
            if try await Self.answeredOrClosedBeforeAnswering(client, "/\(round)") {
                answered += 1
            } else {
                closed += 1
            }
            client.close()
        }
        #expect(answered + closed == 40)
        try await server.stop()
    }

    /// True if the response to `path` arrived whole; false if the connection closed before a
    /// single byte of a response. Anything else (a partial or wrong response) fails the test.
    static func answeredOrClosedBeforeAnswering(_ client: TestClient, _ path: String) async throws -> Bool {
        do {
            let response = try await client.response()
            #expect(response.status == 200)
            #expect(response.text == path)
            return true
        } catch let failure as TestFailure {
            #expect(failure.description.hasPrefix("end of stream inside a line: \"\""), "\(failure)")
            return false
        }
    }

    /// A client that resets the connection while its large response is being written, and one
    /// that resets mid-body: each connection ends (no task left behind), and the server goes on
    /// serving others.
    @Test(arguments: ServerPool.allCases)
    func aPeerThatResetsEndsItsConnectionOnly(pool: ServerPool) async throws {
        let big = [UInt8](repeating: 0x62, count: 16 << 20)
        let server = try await RunningServer.start(on: pool) { request, body, writer in
            if request.path == "/big" {
                try await writer.respond(HTTPResponse(status: .ok), body: big)
            } else {
                let bytes = try await body.collect(upTo: 1 << 20)
                try await writer.respond(HTTPResponse(status: .ok), body: bytes.isEmpty ? Array((request.path ?? "").utf8) : bytes)
            }
        }
        let downloader = try await server.connect()
        try await downloader.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        let uploader = try await server.connect()
        try await uploader.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nsome of it")
        #expect(try await ServerShutdownTests.eventually { server.server.openConnectionCount == 2 })
        try await Task.sleep(for: .milliseconds(50))  // the write fills the socket buffers; the body read waits
        for client in [downloader, uploader] {
            try client.stream.setLinger(.zero)  // close sends RST
            client.close()
        }
        #expect(try await ServerShutdownTests.eventually { server.server.openConnectionCount == 0 })
        let next = try await server.connect()
        try await next.send("GET /still-here HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await next.response().text == "/still-here")
        next.close()
        try await server.stop()
    }
}
