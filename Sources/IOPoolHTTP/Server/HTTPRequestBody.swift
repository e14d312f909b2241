import HTTPTypes
import IOPool

/// A request's body, read from the connection as it is iterated: nothing is read ahead of the
/// responder, so a responder that reads slowly slows the client down (TCP's flow control is the
/// backpressure), and a body costs the server no more memory than one read.
///
/// Valid only during ``HTTPResponder/respond(to:body:writer:)``; iterate it at most once. On an
/// `Expect: 100-continue` request, the first read sends `100 Continue`. Whatever the responder
/// leaves unread is read and discarded after its response, so that the connection can carry the
/// next request.
///
/// ```swift
/// let server = HTTPServer { request, body, writer in
///     let bytes = try await body.collect(upTo: 1024 * 1024)
///     try await writer.respond(HTTPResponse(status: .ok), body: bytes)
/// }
/// ```
public final class HTTPRequestBody: AsyncSequence {
    public typealias Element = [UInt8]
    public typealias Failure = any Error

    private let connection: HTTPConnection
    private enum Framing {
        case length(remaining: Int)
        case chunked(HTTPChunkedBodyDecoder)
        case complete
    }

    // Unchecked exclusivity, as the connection's state (`HTTPConnection`): the body is not
    // `Sendable`, so only the request's task uses it.
    @exclusivity(unchecked) private var framing: Framing
    @exclusivity(unchecked) private var continueSent: Bool
    /// The trailer fields of a chunked body, once it has been read to its end.
    public private(set) var trailers: HTTPFields?

    init(connection: HTTPConnection, framing: HTTPBodyFraming, expectsContinue: Bool) {
        self.connection = connection
        switch framing {
        case .none, .contentLength(0): self.framing = .complete
        case .contentLength(let length): self.framing = .length(remaining: length)
        case .chunked: self.framing = .chunked(HTTPChunkedBodyDecoder(limits: connection.configuration.limits))
        }
        self.continueSent = !expectsContinue
    }

    /// Whether the body has been read to its end (a request without one is complete at once).
    public var isComplete: Bool {
        if case .complete = framing { return true }
        return false
    }

    /// The client waits for `100 Continue` and has not been sent it: nothing of the body was read.
    var isAwaitingContinue: Bool { !continueSent && !isComplete }

    /// The writer put a `100 Continue` ahead of a final head: reads need not send it again.
    func markContinueSent() { continueSent = true }

    /// The next part of the body, or nil at its end: what one read of the connection brought,
    /// at most the connection's input buffer.
    ///
    /// Throws ``HTTPServerError/bodyTimedOut(_:)`` when the client sends nothing for
    /// ``HTTPServer/Configuration/bodyTimeout``, ``HTTPServerError/bodyIncomplete`` when it closes
    /// before the end, ``HTTPServerError/invalidBody(_:)`` for malformed chunked framing or a body
    /// over ``HTTPRequestLimits/maxBodySize``.
    public nonisolated(nonsending) func next() async throws -> [UInt8]? {
        while true {
            switch framing {
            case .complete:
                return nil
            case .length(let remaining):
                if connection.bufferedByteCount > 0 {
                    let count = Swift.min(remaining, connection.bufferedByteCount)
                    let bytes = Array(UnsafeRawBufferPointer(rebasing: connection.buffered.prefix(count)))
                    connection.consume(count)
                    framing = remaining == count ? .complete : .length(remaining: remaining - count)
                    return bytes
                }
                try await readMore()
            case .chunked(var decoder):
                let step: (event: HTTPChunkedBodyDecoder.Event, consumed: Int)
                do {
                    step = try decoder.decode(connection.buffered)
                } catch {
                    connection.mustClose = true
                    throw HTTPServerError.invalidBody(error)
                }
                switch step.event {
                case .data(let range):
                    let bytes = Array(UnsafeRawBufferPointer(rebasing: connection.buffered[range]))
                    connection.consume(step.consumed)
                    framing = .chunked(decoder)
                    if bytes.isEmpty { continue }
                    return bytes
                case .needMoreBytes:
                    connection.consume(step.consumed)
                    framing = .chunked(decoder)
                    try await readMore()
                case .end(let trailers):
                    connection.consume(step.consumed)
                    self.trailers = trailers
                    framing = .complete
                    return nil
                }
            }
        }
    }

    private nonisolated(nonsending) func readMore() async throws {
        if !continueSent {
            continueSent = true
            connection.output.append(contentsOf: HTTPResponseWriter.continueResponse)
        }
        if try await connection.readMoreBody() == 0 {
            connection.mustClose = true
            throw HTTPServerError.bodyIncomplete
        }
    }

    /// The whole body, or ``HTTPServerError/bodyTooLarge(limit:)`` once it passes `maxBytes`.
    public nonisolated(nonsending) func collect(upTo maxBytes: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let part = try await next() {
            guard bytes.count + part.count <= maxBytes else {
                throw HTTPServerError.bodyTooLarge(limit: maxBytes)
            }
            bytes.append(contentsOf: part)
        }
        return bytes
    }

    /// Reads and drops what the responder left unread.
    nonisolated(nonsending) func discardRest() async throws {
        while try await next() != nil {}
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let body: HTTPRequestBody

        public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws -> [UInt8]? {
            try await body.next()
        }

        public mutating func next() async throws -> [UInt8]? {
            try await body.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}
