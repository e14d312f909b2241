public import HTTPTypes
public import Hummingbird
public import IOPoolHTTP
public import Logging
import NIOCore

/// A Hummingbird responder (a `Router`'s `buildResponder()`, with its middleware) as IOPoolHTTP's
/// ``IOPoolHTTP/HTTPResponder``: serve it with ``IOPoolHTTP/HTTPServer``.
///
/// ```swift
/// let server = HTTPServer(responder: IOPoolHummingbirdResponder(router.buildResponder()))
/// ```
///
/// Per request, as Hummingbird's `Application` does: a context from an
/// ``IOPoolRequestContextSource`` whose logger carries a fresh `hb.request.id`; errors the router
/// did not turn into a response (it turns every `HTTPResponseError` into one) become an empty
/// `500 Internal Server Error`; `Server` is added when `serverName` is set. The server adds `Date`.
///
/// The request body reaches Hummingbird as `ByteBuffer`s, one copy of each part; response buffers
/// are written without a copy of their own (see ``ResponseWriterAdapter``).
public struct IOPoolHummingbirdResponder<Responder: Hummingbird.HTTPResponder>: IOPoolHTTP.HTTPResponder
where Responder.Context: InitializableFromSource<IOPoolRequestContextSource> {
    public let responder: Responder
    public let logger: Logger
    public let serverName: String?

    public init(_ responder: Responder, logger: Logger = Logger(label: "Hummingbird"), serverName: String? = nil) {
        self.responder = responder
        self.logger = logger
        self.serverName = serverName
    }

    public nonisolated(nonsending) func respond(to head: HTTPRequest, body: HTTPRequestBody, writer: HTTPResponseWriter) async throws {
        var logger = self.logger
        logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
        let request = Request(head: head, body: Self.requestBody(head, body))
        let context = Responder.Context(source: IOPoolRequestContextSource(logger: logger))
        var response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch {
            logger.debug("Unrecognised Error", metadata: ["error.type": "\(error)"])
            response = Response(status: .internalServerError, body: .init())
        }
        if let serverName { response.headers[.server] = serverName }
        try await response.body.write(ResponseWriterAdapter(writer: writer, head: response.head))
    }

    /// A request that declares no body gets an empty buffer, which costs no allocation, instead of
    /// a sequence over the connection (a type-erased box per request).
    private static func requestBody(_ head: HTTPRequest, _ body: HTTPRequestBody) -> RequestBody {
        let fields = head.headerFields
        if fields[.transferEncoding] == nil, fields[.contentLength] == nil || fields[.contentLength] == "0" {
            return RequestBody(buffer: ByteBuffer())
        }
        return RequestBody(asyncSequence: RequestBodyBuffers(body: body))
    }
}
