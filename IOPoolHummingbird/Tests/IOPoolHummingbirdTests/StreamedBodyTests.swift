import Foundation
import HTTPTypes
import Hummingbird
import IOPool
import IOPoolHTTP
import IOPoolHummingbird
import NIOCore
import Synchronization
import Testing

/// Bodies too big for one read or one write, through Hummingbird's `RequestBody` and
/// `ResponseBody` on the server: they arrive whole and in order, in many parts, and both
/// directions keep the server's backpressure (neither side is read or buffered ahead).
@Suite(.timeLimit(.minutes(1))) struct StreamedBodyTests {
    /// Bytes a handler has handled so far, seen by the test while the exchange is in flight.
    final class Progress: Sendable {
        let bytes = Atomic<Int>(0)
        func add(_ count: Int) { bytes.add(count, ordering: .relaxed) }
        var value: Int { bytes.load(ordering: .relaxed) }
    }

    struct BodyReport: ResponseCodable {
        let bytes: Int
        let parts: Int
        /// Every byte where the pattern puts it: nothing lost, repeated or reordered.
        let inOrder: Bool
    }

    /// Byte `offset` of every test body: a pattern whose period (251, prime) no part size divides.
    static func patternByte(_ offset: Int) -> UInt8 { UInt8(offset % 251) }
    static func pattern(_ range: Range<Int>) -> [UInt8] { range.map(patternByte) }

    static func makeRouter(progress: Progress, gate: AsyncStream<Void>) -> Router<IOPoolRequestContext> {
        let router = Router(context: IOPoolRequestContext.self)
        // Reads the request body part by part, checking the pattern as it goes.
        router.post("count") { request, _ in
            var report = (bytes: 0, parts: 0, inOrder: true)
            for try await buffer in request.body {
                for (index, byte) in buffer.readableBytesView.enumerated() where byte != patternByte(report.bytes + index) {
                    report.inOrder = false
                }
                report.bytes += buffer.readableBytes
                report.parts += 1
            }
            return BodyReport(bytes: report.bytes, parts: report.parts, inOrder: report.inOrder)
        }
        // Reads the first part, then nothing until the test opens the gate.
        router.post("gated-count") { request, _ in
            var iterator = request.body.makeAsyncIterator()
            var bytes = try await iterator.next()?.readableBytes ?? 0
            progress.add(bytes)
            for await _ in gate { break }
            while let buffer = try await iterator.next() { bytes += buffer.readableBytes }
            return BodyReport(bytes: bytes, parts: 0, inOrder: true)
        }
        // `count` parts of `size` bytes; with `?length=stated` the Content-Length is set up front,
        // so the parts go out as one unchunked body.
        router.get("pattern/:count/:size") { request, context in
            let count = try context.parameters.require("count", as: Int.self)
            let size = try context.parameters.require("size", as: Int.self)
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            if request.uri.queryParameters.get("length") == "stated" {
                headers[.contentLength] = String(count * size)
            }
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    for part in 0..<count {
                        try await writer.write(ByteBuffer(bytes: pattern(part * size..<(part + 1) * size)))
                        progress.add(size)
                    }
                    try await writer.finish(nil)
                })
        }
        // Answers without reading the body it was sent.
        router.post("ignore") { _, _ in "ignored" }
        return router
    }

    static func withApp<Result: Sendable>(
        on pool: TestPool, server: HTTPServer.Configuration = .init(), _ body: (IOPool.SocketAddress, Progress, AsyncStream<Void>.Continuation) async throws -> Result
    ) async throws -> Result {
        let progress = Progress()
        let (gate, opener) = AsyncStream.makeStream(of: Void.self)
        defer { opener.finish() }
        return try await withIOPoolApp(makeRouter(progress: progress, gate: gate), on: pool, server: server) { address in
            try await body(address, progress, opener)
        }
    }

    @Test(arguments: TestPool.allCases) func aLargeRequestBodyArrivesWholeAndInOrderInManyParts(pool: TestPool) async throws {
        try await Self.withApp(on: pool) { address, _, _ in
            let client = try await RawHTTPClient(connectingTo: address)
            let length = 1 << 20
            try await client.send("POST /count HTTP/1.1\r\nHost: test\r\nContent-Length: \(length)\r\n\r\n")
            try await client.send(Self.pattern(0..<length))
            let report = try JSONDecoder().decode(BodyReport.self, from: Data(try await client.readResponse().body))
            #expect(report.bytes == length)
            #expect(report.inOrder)
            #expect(report.parts > 1, "streamed in parts, not collected whole first")
        }
    }

    @Test(arguments: TestPool.allCases) func aChunkedRequestBodyOfManyChunksArrivesWholeAndInOrder(pool: TestPool) async throws {
        try await Self.withApp(on: pool) { address, _, _ in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("POST /count HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
            let chunkSize = 1000
            var wire: [UInt8] = []
            for chunk in 0..<300 {
                wire += Array("\(String(chunkSize, radix: 16))\r\n".utf8) + Self.pattern(chunk * chunkSize..<(chunk + 1) * chunkSize)
                wire += Array("\r\n".utf8)
            }
            try await client.send(wire + Array("0\r\n\r\n".utf8))
            let report = try JSONDecoder().decode(BodyReport.self, from: Data(try await client.readResponse().body))
            #expect(report.bytes == 300 * chunkSize)
            #expect(report.inOrder)
        }
    }

    @Test(arguments: TestPool.allCases) func aStreamedResponseWithAStatedLengthGoesOutUnchunked(pool: TestPool) async throws {
        try await Self.withApp(on: pool) { address, _, _ in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("GET /pattern/5/1000?length=stated HTTP/1.1\r\nHost: test\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(!response.isChunked)
            #expect(response.header("content-length") == "5000")
            #expect(response.body == Self.pattern(0..<5000))
            // Framed right: the next response follows on the same connection.
            try await client.send("GET /pattern/1/3 HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().body == Self.pattern(0..<3))
        }
    }

    @Test(arguments: TestPool.allCases) func aRequestBodyTheRouteIgnoresDoesNotBreakTheConnection(pool: TestPool) async throws {
        try await Self.withApp(on: pool) { address, _, _ in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("POST /ignore HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n0123456789")
            let ignored = try await client.readResponse()
            #expect(ignored.status == 200)
            #expect(ignored.text == "ignored")
            try await client.send("GET /pattern/1/4 HTTP/1.1\r\nHost: test\r\n\r\n")
            let next = try await client.readResponse()
            #expect(next.status == 200, "the unread body was not taken for the next request")
            #expect(next.body == Self.pattern(0..<4))
        }
    }

    /// HTTP/1.0 has no chunked coding: a streamed body of unstated length ends with the connection.
    @Test(arguments: TestPool.allCases) func toAnHTTP10ClientAStreamedResponseEndsWithTheConnection(pool: TestPool) async throws {
        try await Self.withApp(on: pool) { address, _, _ in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("GET /pattern/3/1000 HTTP/1.0\r\n\r\n")
            var received: [UInt8] = []
            for _ in 0..<1000 {
                let bytes = try await withTimeout(.seconds(10)) { try await client.reader.read(maxBytes: 64 * 1024) }
                if bytes.isEmpty { break }
                received += bytes
            }
            let headEnd = try #require(received.indices.first { Array(received[$0...].prefix(4)) == Array("\r\n\r\n".utf8) })
            let head = String(decoding: received[..<headEnd], as: UTF8.self).lowercased()
            #expect(head.hasPrefix("http/1.") && head.contains(" 200 "))
            #expect(!head.contains("transfer-encoding"), "no chunked coding for HTTP/1.0")
            #expect(Array(received[(headEnd + 4)...]) == Self.pattern(0..<3000))
        }
    }

    /// The client reads nothing past the head, so the handler's writes must stall once the socket
    /// buffers are full (a few MiB on loopback), far short of the 64 MiB body; then every byte comes.
    @Test(arguments: TestPool.allCases) func aStreamedResponseWaitsForASlowClient(pool: TestPool) async throws {
        try await Self.withApp(on: pool) { address, progress, _ in
            let client = try await RawHTTPClient(connectingTo: address)
            let (parts, size) = (1024, 64 * 1024)
            try await client.send("GET /pattern/\(parts)/\(size) HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readHead().isChunked)
            let written = try await settledValue(of: progress)
            #expect(written < parts * size / 2, "the handler wrote \(written) bytes the client had not read")

            var received = 0
            var inOrder = true
            for _ in 0...parts {
                guard let chunk = try await client.readChunk() else { break }
                if chunk != Self.pattern(received..<received + chunk.count) { inOrder = false }
                received += chunk.count
            }
            _ = try await client.readTrailers()
            #expect(received == parts * size)
            #expect(inOrder)
        }
    }

    /// The handler reads one part and then waits: the client's upload must stall, far short of the
    /// 64 MiB body (nothing reads ahead of the handler); once the handler reads on, all of it arrives.
    @Test(arguments: TestPool.allCases) func aStreamedRequestBodyIsNotReadAheadOfTheHandler(pool: TestPool) async throws {
        var server = HTTPServer.Configuration()
        server.limits.maxBodySize = 128 << 20  // the default (16 MiB) is too close to what loopback buffers hold
        try await Self.withApp(on: pool, server: server) { address, handled, gateOpener in
            let stream = try await TCPStream.connect(to: address, timeout: .seconds(10))
            defer { stream.close() }
            let reader = BufferedReader(stream)
            let (parts, size) = (1024, 64 * 1024)
            let length = parts * size
            try await stream.write(Array("POST /gated-count HTTP/1.1\r\nHost: test\r\nContent-Length: \(length)\r\n\r\n".utf8))
            let sent = Progress()
            let upload = Task {
                let part = [UInt8](repeating: 0x61, count: size)
                for _ in 0..<parts {
                    try await stream.write(part)
                    sent.add(size)
                }
            }
            defer { upload.cancel() }
            let stalledAt = try await settledValue(of: sent)
            #expect(handled.value > 0, "the handler got its first part")
            #expect(stalledAt < length / 2, "the client sent \(stalledAt) bytes the handler had not asked for")

            gateOpener.yield()
            try await withTimeout(.seconds(20)) { try await upload.value }
            let statusLine = try await withTimeout(.seconds(10)) { try await reader.readLine() }
            #expect(statusLine == "HTTP/1.1 200 OK")
            var contentLength = 0
            for _ in 0..<50 {
                guard let field = try await withTimeout(.seconds(10), operation: { try await reader.readLine() }), !field.isEmpty else { break }
                if field.lowercased().hasPrefix("content-length:") {
                    contentLength = Int(field.dropFirst("content-length:".count).trimmingSpaces()) ?? 0
                }
            }
            let body = try await withTimeout(.seconds(10)) { try await reader.readExactly(contentLength) }
            #expect(try JSONDecoder().decode(BodyReport.self, from: Data(body)).bytes == length)
        }
    }
}

/// The value of `progress` once it has not moved for `quiet` (polled every 20 ms), waiting at most
/// `limit`: how far one side of a stalled exchange got.
func settledValue(
    of progress: StreamedBodyTests.Progress, quiet: Duration = .milliseconds(300), limit: Duration = .seconds(10)
) async throws -> Int {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    var last = progress.value
    var unchangedSince = clock.now
    while clock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
        let now = progress.value
        if now != last {
            (last, unchangedSince) = (now, clock.now)
        } else if last > 0, clock.now - unchangedSince >= quiet {
            return last
        }
    }
    return last
}
