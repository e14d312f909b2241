import Foundation
import HTTPTypes
import Hummingbird
import IOPool
import IOPoolHummingbird
import NIOCore
import Testing

/// A real Hummingbird router (routes, a path parameter, middleware, Codable in and out, streamed
/// bodies, errors) served by IOPoolHummingbird on IOPoolHTTP's server, talked to over TCP.
@Suite(.timeLimit(.minutes(1))) struct HummingbirdOnIOPoolTests {
    struct ServedByMiddleware: RouterMiddleware {
        func handle(
            _ request: Request, context: IOPoolRequestContext,
            next: (Request, IOPoolRequestContext) async throws -> Response
        ) async throws -> Response {
            var response = try await next(request, context)
            response.headers[HTTPField.Name("X-Served-By")!] = "iopool"
            response.headers[HTTPField.Name("X-Middleware-Thread")!] = currentThreadName()
            return response
        }
    }

    struct Failure: Error {}

    static func makeRouter() -> Router<IOPoolRequestContext> {
        // HEAD from GET as Hummingbird does it: the GET's head, Content-Length kept, no body.
        let router = Router(context: IOPoolRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: ServedByMiddleware())
        router.get("plaintext") { _, _ in "Hello, World!" }
        router.get("users/:id") { _, context in "user \(try context.parameters.require("id", as: Int.self))" }
        router.get("json") { _, _ in Greeting(message: "Hello, World!") }
        router.get("thread") { _, _ in currentThreadName() }
        router.get("search") { request, _ in "q=\(request.uri.queryParameters.get("q") ?? "none")" }
        router.post("greetings") { request, context in
            let greeting = try await request.decode(as: Greeting.self, context: context)
            return Greeting(message: greeting.message.uppercased())
        }
        router.get("teapot") { _, _ -> String in throw HTTPError(.badRequest, message: "no tea") }
        router.get("fails") { _, _ -> String in throw Failure() }
        // Fails after its first part has been written: the response cannot be finished.
        router.get("fails-midway") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "partial"))
                    throw Failure()
                })
        }
        // Each request buffer goes back out as it comes; the trailer counts the bytes.
        router.post("echo") { request, _ in
            Response(
                status: .ok, headers: [.contentType: "application/octet-stream"],
                body: ResponseBody { writer in
                    var count = 0
                    for try await buffer in request.body {
                        count += buffer.readableBytes
                        try await writer.write(buffer)
                    }
                    try await writer.finish([HTTPField.Name("X-Echoed-Bytes")!: String(count)])
                })
        }
        return router
    }

    @Test(arguments: TestPool.allCases) func routesPathParametersMiddlewareAndJSONAnswerOnOneKeepAliveConnection(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)

            try await client.send("GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n")
            let plain = try await client.readResponse()
            #expect(plain.status == 200)
            #expect(plain.text == "Hello, World!")
            #expect(plain.header("content-type")?.hasPrefix("text/plain") == true)
            #expect(plain.header("content-length") == "13")
            #expect(plain.header("x-served-by") == "iopool", "the router's middleware ran")
            #expect(plain.header("server") == "iopool-test")
            #expect(plain.header("date") != nil, "the server adds Date")

            try await client.send("GET /users/42 HTTP/1.1\r\nHost: test\r\n\r\n")
            let user = try await client.readResponse()
            #expect(user.status == 200)
            #expect(user.text == "user 42")

            try await client.send("GET /json HTTP/1.1\r\nHost: test\r\n\r\n")
            let json = try await client.readResponse()
            #expect(json.status == 200)
            #expect(json.header("content-type")?.hasPrefix("application/json") == true)
            #expect(try JSONDecoder().decode(Greeting.self, from: Data(json.body)).message == "Hello, World!")

            try await client.send("GET /search?q=swift%20io&page=2 HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().text == "q=swift io", "the query reaches the router, decoded")

            try await client.send("GET /users/not-a-number HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().status == 400, "a parameter that is not an Int")

            try await client.send("GET /missing HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().status == 404)

            try await client.send("DELETE /plaintext HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect([404, 405].contains(try await client.readResponse().status), "no DELETE route")
        }
    }

    /// The point of the runtime: no hop to Swift's global executor; the handler and the middleware
    /// (after awaiting the handler) run on a thread of the application's pool.
    @Test(arguments: TestPool.allCases) func handlersAndMiddlewareRunOnThePoolsThreads(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool, threads: 2) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            for _ in 0..<3 {
                try await client.send("GET /thread HTTP/1.1\r\nHost: test\r\n\r\n")
                let response = try await client.readResponse()
                let expected = pool == .ioThreads ? "IOThread \(pool.threadNamePrefix)" : "WorkStealingPool WorkStealingPool(\(pool.threadNamePrefix)*)"
                #expect(response.text.hasPrefix(expected), "the handler ran on \(response.text)")
                #expect(response.header("x-middleware-thread")?.hasPrefix(expected) == true)
            }
        }
    }

    @Test(arguments: TestPool.allCases) func aHeadRequestGetsTheGetRoutesHeadWithoutItsBody(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("HEAD /plaintext HTTP/1.1\r\nHost: test\r\n\r\n")
            let head = try await client.readResponse(isHead: true)
            #expect(head.status == 200)
            #expect(head.header("content-length") == "13")
            // The next response starts right after the head: no body bytes were sent.
            try await client.send("GET /users/7 HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().text == "user 7")
        }
    }

    @Test(arguments: TestPool.allCases) func aCodableRequestBodyIsDecodedFromTheConnection(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            let body = #"{"message":"quiet"}"#
            try await client.send(
                "POST /greetings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(try JSONDecoder().decode(Greeting.self, from: Data(response.body)).message == "QUIET")

            try await client.send(
                "POST /greetings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{nope")
            #expect(try await client.readResponse().status == 400, "invalid JSON is the client's error")
        }
    }

    /// Streamed both ways: the first chunk comes back before the client has sent the second, so
    /// neither the request body nor the response is buffered whole anywhere.
    @Test(arguments: TestPool.allCases) func aStreamedRequestBodyIsEchoedInAStreamedResponseChunkByChunk(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            let head = try await client.readHead()
            #expect(head.status == 200)
            #expect(head.isChunked, "a body of unknown length is streamed chunked")
            #expect(head.header("x-served-by") == "iopool")
            #expect(try await client.readChunk() == Array("first".utf8))

            try await client.send("6\r\nsecond\r\n")
            #expect(try await client.readChunk() == Array("second".utf8))

            try await client.send("0\r\n\r\n")
            #expect(try await client.readChunk() == nil)
            let trailers = try await client.readTrailers()
            #expect(trailers.first { $0.name == "x-echoed-bytes" }?.value == "11")

            // The connection carries on after a streamed exchange.
            try await client.send("GET /users/1 HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().text == "user 1")
        }
    }

    @Test(arguments: TestPool.allCases) func errorsBecomeResponsesAndTheConnectionCarriesOn(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("GET /teapot HTTP/1.1\r\nHost: test\r\n\r\n")
            let teapot = try await client.readResponse()
            #expect(teapot.status == 400, "an HTTPError keeps its status")
            #expect(teapot.text.contains("no tea"))

            try await client.send("GET /fails HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().status == 500, "any other error is a 500")

            try await client.send("GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n")
            #expect(try await client.readResponse().text == "Hello, World!")
        }
    }

    /// The client must not take a cut-off body for a whole one: no last chunk, and the connection closes.
    @Test(arguments: TestPool.allCases) func aBodyThatFailsMidwayClosesTheConnectionWithoutALastChunk(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("GET /fails-midway HTTP/1.1\r\nHost: test\r\n\r\n")
            var received: [UInt8] = []
            for _ in 0..<100 {
                let bytes = try await withTimeout(.seconds(10)) { try await client.reader.read(maxBytes: 4096) }
                if bytes.isEmpty { break }
                received += bytes
            }
            let text = String(decoding: received, as: UTF8.self)
            #expect(!text.contains("\r\n0\r\n\r\n"), "no last chunk after a failed body: \(text.debugDescription)")
            #expect(!text.contains("Content-Length: 7"), "not framed as if complete")
            #expect(try await client.reader.read(maxBytes: 1) == [], "the connection closed")
        }
    }

    /// curl's and most HTTP clients' way to upload: the head, then the body only after `100 Continue`,
    /// which the server sends when the route first reads the body.
    @Test(arguments: TestPool.allCases) func aCodableUploadWaitingFor100ContinueGetsItFromTheRoute(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            let body = #"{"message":"later"}"#
            try await client.send(
                "POST /greetings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                    + "Expect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            let interim = try await client.readHead()
            #expect(interim.status == 100)
            try await client.send(body)
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(try JSONDecoder().decode(Greeting.self, from: Data(response.body)).message == "LATER")
        }
    }

    @Test(arguments: TestPool.allCases) func pipelinedRequestsAreAnsweredInOrderOnTwoThreads(pool: TestPool) async throws {
        try await withIOPoolApp(Self.makeRouter(), on: pool, threads: 2) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send((1...8).map { "GET /users/\($0) HTTP/1.1\r\nHost: test\r\n\r\n" }.joined())
            for id in 1...8 {
                #expect(try await client.readResponse().text == "user \(id)")
            }
        }
    }

    @Test(arguments: TestPool.allCases) func theReadmeExampleRouterAnswers(pool: TestPool) async throws {
        try await withIOPoolApp(buildRouter(), on: pool) { address in
            let client = try await RawHTTPClient(connectingTo: address)
            try await client.send("GET /hello/Swift HTTP/1.1\r\nHost: test\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(try JSONDecoder().decode(Greeting.self, from: Data(response.body)).message == "Hello, Swift!")
        }
    }
}


/// Where the caller runs: `IOThread NAME` on an IOThreadPool's thread, `WorkStealingPool NAME` on
/// a work-stealing worker, `elsewhere` off both (Swift's global executor).
func currentThreadName() -> String {
    if let thread = IOThread.current { return "IOThread \(thread.name)" }
    if let pool = WorkStealingPool.current { return "WorkStealingPool \(pool.name)" }
    return "elsewhere"
}
