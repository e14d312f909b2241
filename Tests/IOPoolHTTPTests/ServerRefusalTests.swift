import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import IOPoolHTTP
import Testing

/// What a malformed, smuggling or oversized request gets over the wire: the status that says
/// what was wrong, `Connection: close`, the connection closed, and nothing that followed it on
/// the connection served (a smuggled request must never reach the responder).
@Suite(.timeLimit(.minutes(1)))
struct ServerRefusalTests {
    /// Counts the requests that reached the responder.
    final class Seen: Sendable {
        let paths = Locked<[String]>([])
        func record(_ path: String) { paths.withLock { $0.append(path) } }
        var all: [String] { paths.withLock { $0 } }
    }

    static func start(_ pool: ServerPool, _ seen: Seen, limits: HTTPRequestLimits = .init()) async throws -> RunningServer {
        var configuration = HTTPServer.Configuration()
        configuration.limits = limits
        return try await RunningServer.start(on: pool, configuration: configuration) { request, body, writer in
            seen.record(request.path ?? "")
            let bytes = try await body.collect(upTo: 1 << 20)
            try await writer.respond(HTTPResponse(status: .ok), body: bytes)
        }
    }

    /// Sends `request` followed by a second, valid request that must not be served.
    static func expectRefusal(
        _ request: String, status: Int, pool: ServerPool, limits: HTTPRequestLimits = .init(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let seen = Seen()
        let server = try await start(pool, seen, limits: limits)
        let client = try await server.connect()
        try await client.send(request + "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try await client.response()
        #expect(response.status == status, "\(response)", sourceLocation: sourceLocation)
        #expect(response.closes, sourceLocation: sourceLocation)
        #expect(try await client.isClosed(), sourceLocation: sourceLocation)
        #expect(!seen.all.contains("/smuggled"), sourceLocation: sourceLocation)
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func contentLengthWithTransferEncodingIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func differingContentLengthsAreRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func aMalformedContentLengthIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func aTransferEncodingNotEndingInChunkedIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func anUnknownTransferCodingIsNotImplemented(pool: ServerPool) async throws {
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func obsFoldIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("GET / HTTP/1.1\r\nHost: a\r\nX: one\r\n two\r\n\r\n", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func whitespaceBeforeTheColonIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\nabcd", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func aBareCRIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func anUnsupportedVersionIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func aRequestLineOverTheLimitIs414(pool: ServerPool) async throws {
        var limits = HTTPRequestLimits()
        limits.maxRequestLineLength = 100
        try await Self.expectRefusal("GET /\(String(repeating: "a", count: 200)) HTTP/1.1\r\nHost: a\r\n\r\n", status: 414, pool: pool, limits: limits)
    }

    @Test(arguments: ServerPool.allCases)
    func aHeadOverTheLimitIs431(pool: ServerPool) async throws {
        var limits = HTTPRequestLimits()
        limits.maxHeaderBytes = 1000
        try await Self.expectRefusal("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "v", count: 2000))\r\n\r\n", status: 431, pool: pool, limits: limits)
    }

    @Test(arguments: ServerPool.allCases)
    func tooManyFieldsIs431(pool: ServerPool) async throws {
        var limits = HTTPRequestLimits()
        limits.maxHeaderCount = 10
        let fields = (0..<20).map { "X-\($0): v\r\n" }.joined()
        try await Self.expectRefusal("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n", status: 431, pool: pool, limits: limits)
    }

    @Test(arguments: ServerPool.allCases)
    func aContentLengthOverTheBodyLimitIs413BeforeTheResponderRuns(pool: ServerPool) async throws {
        var limits = HTTPRequestLimits()
        limits.maxBodySize = 1000
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", status: 413, pool: pool, limits: limits)
    }

    @Test(arguments: ServerPool.allCases)
    func aChunkedBodyOverTheBodyLimitIs413(pool: ServerPool) async throws {
        var limits = HTTPRequestLimits()
        limits.maxBodySize = 1000
        let chunks = String(repeating: "64\r\n\(String(repeating: "c", count: 100))\r\n", count: 11)
        try await Self.expectRefusal("POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(chunks)0\r\n\r\n", status: 413, pool: pool, limits: limits)
    }

    @Test(arguments: ServerPool.allCases)
    func anOverflowingChunkSizeIsRefused(pool: ServerPool) async throws {
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func anOversizedChunkExtensionIsRefused(pool: ServerPool) async throws {
        var limits = HTTPRequestLimits()
        limits.maxChunkExtensionLength = 64
        try await Self.expectRefusal(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;\(String(repeating: "e", count: 200))\r\nx\r\n0\r\n\r\n",
            status: 400, pool: pool, limits: limits)  // the parser's choice: a framing error, as llhttp
    }

    @Test(arguments: ServerPool.allCases)
    func aMalformedChunkIsABadRequest(pool: ServerPool) async throws {
        try await Self.expectRefusal("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX\r\n0\r\n\r\n", status: 400, pool: pool)
    }

    @Test(arguments: ServerPool.allCases)
    func aBodyThatEndsEarlyIsABadRequest(pool: ServerPool) async throws {
        let seen = Seen()
        let server = try await Self.start(pool, seen)
        let client = try await server.connect()
        try await client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        try client.stream.shutdown(.write)
        let response = try await client.response()
        #expect(response.status == 400)
        #expect(try await client.isClosed())
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func garbageGetsA400AndTheServerGoesOnServingOthers(pool: ServerPool) async throws {
        let seen = Seen()
        let server = try await Self.start(pool, seen)
        let bad = try await server.connect()
        try await bad.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a])  // a TLS hello, say
        #expect(try await bad.response().status == 400)
        #expect(try await bad.isClosed())
        let good = try await server.connect()
        try await good.send("GET /fine HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await good.response().status == 200)
        good.close()
        try await server.stop()
    }
}
