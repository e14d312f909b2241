import HTTPTypes
import IOPool
import IOPoolHTTP
import Testing

/// HTTP/1.1 as a client sees it on the wire: keep-alive, pipelining, HTTP/1.0, `Connection:
/// close`, HEAD, chunked bodies both ways, `Expect: 100-continue`, and what a failing responder
/// turns into. Each on both pools.
@Suite(.timeLimit(.minutes(1)))
struct ServerProtocolTests {
    /// Answers `GET /echo-path` with the path, `POST` with the body it read.
    nonisolated(nonsending) static func echo(_ request: HTTPRequest, _ body: HTTPRequestBody, _ writer: HTTPResponseWriter) async throws {
        if request.method == .post || request.method == .put {
            let bytes = try await body.collect(upTo: 1 << 24)
            try await writer.respond(HTTPResponse(status: .ok), body: bytes)
        } else {
            try await writer.respond(HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), body: Array((request.path ?? "").utf8))
        }
    }

    @Test(arguments: ServerPool.allCases)
    func keepAliveServesManyRequestsOnOneConnection(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        for index in 0..<20 {
            try await client.send("GET /\(index) HTTP/1.1\r\nHost: a\r\n\r\n")
            let response = try await client.response()
            #expect(response.status == 200)
            #expect(response.text == "/\(index)")
            #expect(!response.closes)
            #expect(response.field("date") != nil)
            #expect(response.field("content-type") == "text/plain")
        }
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func pipelinedResponsesComeInRequestOrder(pool: ServerPool) async throws {
        // Later requests answer faster: a server that answered them concurrently would reorder.
        let server = try await RunningServer.start(on: pool) { request, _, writer in
            let index = Int(request.path!.dropFirst())!
            try await IOPool.sleep(for: .milliseconds(16 - index))
            try await writer.respond(HTTPResponse(status: .ok), body: Array("\(index)".utf8))
        }
        let client = try await server.connect()
        try await client.send((0..<16).map { "GET /\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined())
        for index in 0..<16 {
            let response = try await client.response()
            #expect(response.text == "\(index)")
        }
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func pipelinedBodiesStayWithTheirRequests(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        try await client.send(
            "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nfirst"
                + "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3;x=y\r\nond\r\n0\r\nT: v\r\n\r\n"
                + "GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().text == "first")
        #expect(try await client.response().text == "second")
        #expect(try await client.response().text == "/third")
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func anUnreadBodyIsSkippedAndTheNextRequestIsServed(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { request, _, writer in
            try await writer.respond(HTTPResponse(status: .ok), body: Array((request.path ?? "").utf8))
        }
        let client = try await server.connect()
        let body = String(repeating: "x", count: 100_000)
        try await client.send("POST /ignored HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().text == "/ignored")
        #expect(try await client.response().text == "/next")
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func http10IsAnsweredAndTheConnectionCloses(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        try await client.send("GET /old HTTP/1.0\r\n\r\n")
        let response = try await client.response()
        // RFC 9110 §2.5: the server sends its own version (1.1; nginx does too), and the
        // response uses nothing a 1.0 client cannot read.
        #expect(response.version == "HTTP/1.1")
        #expect(response.field("transfer-encoding") == nil)
        #expect(response.text == "/old")
        #expect(try await client.isClosed())
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func http10KeepAliveIsHonoured(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        for _ in 0..<3 {
            try await client.send("GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let response = try await client.response()
            #expect(response.text == "/ka")
            #expect(response.field("connection")?.lowercased() == "keep-alive")
        }
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func connectionCloseIsAnsweredAndTheConnectionCloses(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        // The second request must not be answered: the first said close.
        try await client.send("GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try await client.response()
        #expect(response.text == "/last")
        #expect(response.closes)
        #expect(try await client.isClosed())
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func headGetsTheFieldsOfGetWithoutABody(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { _, _, writer in
            try await writer.respond(HTTPResponse(status: .ok), body: Array("thirteen byte".utf8))
        }
        let client = try await server.connect()
        try await client.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try await client.response(toHead: true)
        #expect(head.field("content-length") == "13")
        // Had the HEAD response carried a body, it would be read here as a bad status line.
        let get = try await client.response()
        #expect(get.text == "thirteen byte")
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aStreamedResponseIsChunkedWithTrailers(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { _, _, writer in
            try await writer.writeHead(HTTPResponse(status: .ok))
            for part in ["one ", "two ", "three"] { try await writer.write(Array(part.utf8)) }
            var trailers = HTTPFields()
            trailers[HTTPField.Name("X-Checksum")!] = "abc"
            try await writer.finish(trailers: trailers)
        }
        let client = try await server.connect()
        for _ in 0..<2 {
            try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            let response = try await client.response()
            #expect(response.field("transfer-encoding") == "chunked")
            #expect(response.text == "one two three")
            #expect(response.trailers.first?.value == "abc")
        }
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aStreamedResponseToHTTP10EndsWithTheConnection(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { _, _, writer in
            try await writer.writeHead(HTTPResponse(status: .ok))
            try await writer.write(Array("streamed".utf8))
            try await writer.finish()
        }
        let client = try await server.connect()
        try await client.send("GET / HTTP/1.0\r\n\r\n")
        let response = try await client.response()
        #expect(response.field("transfer-encoding") == nil)
        #expect(response.text == "streamed")
        #expect(client.sawEndOfStream)
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func expectContinueGetsA100BeforeTheBodyIsSent(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        try await client.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        let interim = try await client.response()
        #expect(interim.status == 100)
        try await client.send("data")
        let final = try await client.response()
        #expect(final.status == 200)
        #expect(final.text == "data")
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func expectContinueIsNotSentWhenTheResponderAnswersWithoutReading(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { _, _, writer in
            try await writer.respond(HTTPResponse(status: .contentTooLarge))
        }
        let client = try await server.connect()
        try await client.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
        let response = try await client.response()
        #expect(response.status == 413)
        // The body was never asked for: the connection cannot be reused, and says so.
        #expect(response.closes)
        #expect(try await client.isClosed())
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aResponderThatThrowsGetsA500AndTheConnectionGoesOn(pool: ServerPool) async throws {
        struct Failure: Error {}
        let server = try await RunningServer.start(on: pool) { request, _, writer in
            if request.path == "/fail" { throw Failure() }
            try await writer.respond(HTTPResponse(status: .ok), body: Array("fine".utf8))
        }
        let client = try await server.connect()
        try await client.send("GET /fail HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().status == 500)
        let next = try await client.response()
        #expect(next.status == 200)
        #expect(next.text == "fine")
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aResponderThatReturnsWithoutAnsweringGetsA500(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { _, _, _ in }
        let client = try await server.connect()
        try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().status == 500)
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aResponderThatThrowsMidStreamClosesTheConnection(pool: ServerPool) async throws {
        struct Failure: Error {}
        let server = try await RunningServer.start(on: pool) { _, _, writer in
            try await writer.writeHead(HTTPResponse(status: .ok))
            try await writer.write(Array("partial".utf8))
            throw Failure()
        }
        let client = try await server.connect()
        try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        // The chunked body never ends: the client sees end of stream inside it.
        await #expect(throws: TestFailure.self) { _ = try await client.response() }
        #expect(client.sawEndOfStream)
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aLargeResponseArrivesWhole(pool: ServerPool) async throws {
        let payload = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let server = try await RunningServer.start(on: pool) { _, _, writer in
            try await writer.respond(HTTPResponse(status: .ok), body: payload)
        }
        let client = try await server.connect()
        try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().body == payload)
        #expect(try await client.response().body == payload)
        client.close()
        try await server.stop()
    }

    @Test(arguments: ServerPool.allCases)
    func aLargeChunkedUploadStreamsThroughTheBody(pool: ServerPool) async throws {
        // Counts the body's parts: a body bigger than the input buffer arrives in many.
        let server = try await RunningServer.start(on: pool) { _, body, writer in
            var total = 0
            var parts = 0
            for try await part in body {
                total += part.count
                parts += 1
            }
            try await writer.respond(HTTPResponse(status: .ok), body: Array("\(total) \(parts > 1)".utf8))
        }
        let client = try await server.connect()
        var request = Array("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let chunk = [UInt8](repeating: 65, count: 10_000)
        for _ in 0..<100 { request += Array("2710\r\n".utf8) + chunk + Array("\r\n".utf8) }
        request += Array("0\r\n\r\n".utf8)
        try await client.send(request)
        #expect(try await client.response().text == "1000000 true")
        client.close()
        try await server.stop()
    }

    /// The start of the next head already read with the current request (a pipelining client's
    /// write split anywhere): the connection waits for the rest of it and answers both. (The
    /// server used to force-unwrap a head deadline only an idle read set, and crashed.)
    @Test(arguments: ServerPool.allCases)
    func aRequestFollowedByTheStartOfTheNextInOneWriteGetsBothAnswered(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        try await client.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /sec")
        #expect(try await client.response().text == "/first")
        try await client.send("ond HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().text == "/second")
        client.close()
        try await server.stop()
    }

    /// More pipelined requests than the input buffer holds, in one write: each read ends inside
    /// a head somewhere.
    @Test(arguments: ServerPool.allCases)
    func twoHundredPipelinedRequestsInOneWriteAreAllAnswered(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool, Self.echo)
        let client = try await server.connect()
        try await client.send((0..<200).map { "GET /request-\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined())
        for index in 0..<200 {
            #expect(try await client.response().text == "/request-\(index)")
        }
        client.close()
        try await server.stop()
    }

    /// A responder that writes its head before reading an `Expect: 100-continue` body: the
    /// `100 Continue` must come before the final head (a 1xx after it would be read as body).
    @Test(arguments: ServerPool.allCases)
    func hundredContinueNeverFollowsTheHeadOfTheFinalResponse(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { _, body, writer in
            try await writer.writeHead(HTTPResponse(status: .ok))
            for try await part in body { try await writer.write(part) }
            try await writer.finish()
        }
        let client = try await server.connect()
        try await client.send("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        let first = try await client.response()
        #expect(first.status == 100)
        try await client.send("4\r\nbody\r\n0\r\n\r\n")
        let final = try await client.response()
        #expect(final.status == 200)
        #expect(final.text == "body")
        // The body was read whole: the connection carries on.
        #expect(!final.closes)
        try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let next = try await client.response()
        #expect(next.status == 200)
        client.close()
        try await server.stop()
    }

    /// A trailer field longer than the connection's 4 KiB input buffer (the trailer section's
    /// limit is the head's, 64 KiB): the buffer grows for it as it does for a large head. (It
    /// did not: the body's read returned without reading, and the decoder asked again, in a
    /// loop that never suspended and held the connection's thread.)
    @Test(arguments: ServerPool.allCases)
    func aTrailerLongerThanTheInputBufferIsRead(pool: ServerPool) async throws {
        let server = try await RunningServer.start(on: pool) { _, body, writer in
            let bytes = try await body.collect(upTo: 1 << 20)
            let trailer = body.trailers?[HTTPField.Name("X-Long")!] ?? ""
            try await writer.respond(HTTPResponse(status: .ok), body: Array("\(bytes.count) \(trailer.utf8.count)".utf8))
        }
        let client = try await server.connect()
        let long = String(repeating: "t", count: 10_000)
        try await client.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Long: \(long)\r\n\r\n")
        #expect(try await client.response().text == "3 10000")
        client.close()
        try await server.stop()
    }
}
