import HTTPTypes
import IOPool
import IOPoolHTTP
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle
import Testing

// The ```swift blocks of IOPoolHTTP's doc comments, verbatim (`.ci/doc-examples.py` checks that
// each appears line for line under Tests/). The handler examples run against a real connection;
// the two that listen on port 8080 are compiled only (a fixed port cannot be used in tests).

@Suite(.timeLimit(.minutes(1)))
struct HTTPDocExampleTests {
    @Test func theRequestBodyExampleEchoesTheBody() async throws {
        let server = HTTPServer { request, body, writer in
            let bytes = try await body.collect(upTo: 1024 * 1024)
            try await writer.respond(HTTPResponse(status: .ok), body: bytes)
        }
        let running = try await RunningServer.start(server, on: .ioThreads)
        let client = try await running.connect()
        try await client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        #expect(try await client.response().text == "hello")
        client.close()
        try await running.stop()
    }

    @Test func theHandlerExampleSaysHello() async throws {
        let hello = HTTPHandler { request, body, writer in
            try await writer.respond(HTTPResponse(status: .ok), body: Array("Hello, World!".utf8))
        }
        let running = try await RunningServer.start(HTTPServer(responder: hello), on: .workStealing)
        let client = try await running.connect()
        try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().text == "Hello, World!")
        client.close()
        try await running.stop()
    }

    @Test func theStreamingWriterExampleSendsTwoLines() async throws {
        let server = HTTPServer { request, body, writer in
            try await writer.writeHead(HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]))
            for line in ["one\n", "two\n"] {
                try await writer.write(Array(line.utf8))
            }
            try await writer.finish()
        }
        let running = try await RunningServer.start(server, on: .ioThreads)
        let client = try await running.connect()
        try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try await client.response()
        #expect(response.text == "one\ntwo\n")
        #expect(response.field("transfer-encoding") == "chunked")
        client.close()
        try await running.stop()
    }
}

/// README, "An HTTP/1.1 server".
/// GET /hello: text; POST /upload: the size of a streamed body; anything else: 404.
struct App: HTTPResponder {
    nonisolated(nonsending) func respond(to request: HTTPRequest, body: HTTPRequestBody, writer: HTTPResponseWriter) async throws {
        switch (request.method, request.path) {
        case (.get, "/hello"):
            try await writer.respond(
                HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]),
                body: Array("Hello, World!".utf8))
        case (.post, "/upload"):
            var count = 0
            for try await part in body { count += part.count }  // one read at a time
            try await writer.respond(HTTPResponse(status: .ok), body: Array("\(count) bytes\n".utf8))
        default:
            try await writer.respond(HTTPResponse(status: .notFound))
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct ReadmeHTTPExampleTests {
    @Test(arguments: ServerPool.allCases)
    func theReadmeAppAnswersItsRoutes(pool: ServerPool) async throws {
        let running = try await RunningServer.start(HTTPServer(responder: App()), on: pool)
        let client = try await running.connect()
        try await client.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().text == "Hello, World!")
        try await client.send("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n2\r\nfg\r\n0\r\n\r\n")
        #expect(try await client.response().text == "7 bytes\n")
        try await client.send("GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try await client.response().status == 404)
        client.close()
        try await running.stop()
    }
}

/// Compiled, never called: they listen on a fixed port.
enum HTTPFixedPortExamples {
    /// `HTTPServer`'s doc comment.
    static func serveOnEveryThread() async throws {
        let pool = try IOThreadPool()
        let server = HTTPServer { request, body, writer in
            try await writer.respond(
                HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]),
                body: Array("Hello, World!".utf8))
        }
        let listeners = try pool.listenOnEveryThread(SocketAddress("127.0.0.1:8080"))
        try await server.serve(listeners, on: pool)  // until server.beginGracefulShutdown()
    }

    /// README, "An HTTP/1.1 server".
    static func readmeServe() async throws {
        let pool = try IOThreadPool()
        var configuration = HTTPServer.Configuration()
        configuration.idleTimeout = .seconds(30)
        configuration.limits.maxBodySize = 1024 * 1024
        let server = HTTPServer(configuration: configuration, responder: App())
        try await server.serve(pool.listenOnEveryThread(SocketAddress("127.0.0.1:8080")), on: pool)
    }

    /// `HTTPService`'s doc comment.
    static func serviceGroup() async throws {
        let pool = try IOThreadPool()
        let server = HTTPServer { _, _, writer in
            try await writer.respond(HTTPResponse(status: .ok), body: Array("Hello, World!".utf8))
        }
        let http = try HTTPService(server, listeners: pool.listenOnEveryThread(SocketAddress("127.0.0.1:8080")), on: pool)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: pool), .init(service: http)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "server")))
        try await group.run()
    }
}
