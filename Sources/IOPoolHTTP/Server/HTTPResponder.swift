import HTTPTypes

/// What serves requests: called once per request, on the connection's task, one request at a time
/// per connection (so responses leave in request order, pipelined or not).
///
/// `body` and `writer` are valid only until `respond` returns. A responder that returns without a
/// complete response gets one finished for it (see ``HTTPResponseWriter``); one that throws before
/// writing the head gets a `500 Internal Server Error` and the connection carries on; one that
/// throws after the head was sent has its connection closed, since the response cannot be mended.
public protocol HTTPResponder: Sendable {
    nonisolated(nonsending) func respond(to request: HTTPRequest, body: HTTPRequestBody, writer: HTTPResponseWriter) async throws
}

/// A closure as an ``HTTPResponder``.
///
/// ```swift
/// let hello = HTTPHandler { request, body, writer in
///     try await writer.respond(HTTPResponse(status: .ok), body: Array("Hello, World!".utf8))
/// }
/// ```
public struct HTTPHandler: HTTPResponder {
    private let handler: nonisolated(nonsending) @Sendable (HTTPRequest, HTTPRequestBody, HTTPResponseWriter) async throws -> Void

    public init(_ handler: nonisolated(nonsending) @escaping @Sendable (HTTPRequest, HTTPRequestBody, HTTPResponseWriter) async throws -> Void) {
        self.handler = handler
    }

    public nonisolated(nonsending) func respond(to request: HTTPRequest, body: HTTPRequestBody, writer: HTTPResponseWriter) async throws {
        try await handler(request, body, writer)
    }
}
