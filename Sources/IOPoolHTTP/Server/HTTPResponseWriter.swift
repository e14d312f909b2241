import HTTPTypes
import IOPool

/// Writes one response: either at once with ``respond(_:body:)``, or streamed with
/// ``writeHead(_:)``, ``write(_:)`` (each part waits for the socket: backpressure) and
/// ``finish(trailers:)``.
///
/// The writer owns the framing fields: `Content-Length` is set from the body for
/// ``respond(_:body:)``; a streamed response keeps a `Content-Length` the responder set (and must
/// then write exactly that many bytes), and is otherwise chunked (or, to an HTTP/1.0 client,
/// delimited by closing the connection). `Transfer-Encoding` set by the responder is replaced;
/// `Connection: close` is added when the connection ends after this response; `Date` is added
/// unless set. A `HEAD` request's response carries the head only; so do 1xx, 204 and 304.
///
/// Valid only during ``HTTPResponder/respond(to:body:writer:)``. A streamed response the
/// responder leaves unfinished is finished for it.
///
/// ```swift
/// let server = HTTPServer { request, body, writer in
///     try await writer.writeHead(HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]))
///     for line in ["one\n", "two\n"] {
///         try await writer.write(Array(line.utf8))
///     }
///     try await writer.finish()
/// }
/// ```
public final class HTTPResponseWriter {
    private let connection: HTTPConnection
    private let version: HTTPVersion
    private let isHead: Bool
    private let keepAlive: Bool
    private let body: HTTPRequestBody

    private enum State {
        case idle
        /// The head is in the output; body bytes are framed as `framing` says.
        case streaming(Framing)
        case finished
    }

    private enum Framing {
        /// No body bytes go out (HEAD, 1xx, 204, 304); `write` drops what it is given.
        case none
        case length(remaining: Int)
        case chunked
        /// HTTP/1.0 without a length: the body ends when the connection closes.
        case untilClose
    }

    /// Unchecked exclusivity, as the connection's state (`HTTPConnection`): the writer is not
    /// `Sendable`, so only the request's task uses it.
    @exclusivity(unchecked) private var state = State.idle

    init(connection: HTTPConnection, version: HTTPVersion, isHead: Bool, keepAlive: Bool, body: HTTPRequestBody) {
        self.connection = connection
        self.version = version
        self.isHead = isHead
        self.keepAlive = keepAlive
        self.body = body
    }

    /// Whether the head has been written (the status can no longer change).
    public var hasStarted: Bool {
        if case .idle = state { return false }
        return true
    }

    var hasFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    // MARK: Whole responses

    /// Writes the whole response: its head with `Content-Length` and then `body`. The bytes go out
    /// when the connection next waits for input, together with other pipelined responses.
    public nonisolated(nonsending) func respond(_ response: HTTPResponse, body: some Collection<UInt8> = [UInt8]()) async throws {
        guard case .idle = state else { throw HTTPServerError.responseAlreadyStarted }
        // Read once: swift-http-types' `status` getter parses the `:status` field each time
        // (about 300 instructions; it was read 3 times per response).
        let status = response.status
        let allowsBody = Self.statusAllowsBody(status)
        appendHead(response, status: status, framing: allowsBody ? .length(remaining: body.count) : .none)
        let sendsBody = allowsBody && !isHead
        if sendsBody { connection.output.append(contentsOf: body) }
        state = .finished
        if connection.output.count >= HTTPConnection.flushThreshold { try await connection.flush() }
    }

    // MARK: Streamed responses

    /// Writes the head of a streamed response. It leaves with the first body part (or with
    /// ``flush()``).
    public nonisolated(nonsending) func writeHead(_ response: HTTPResponse) async throws {
        guard case .idle = state else { throw HTTPServerError.responseAlreadyStarted }
        let status = response.status
        let framing: Framing
        if !Self.statusAllowsBody(status) {
            framing = .none
        } else if let length = response.headerFields[.contentLength] {
            guard let count = Int(length), count >= 0, length.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw HTTPServerError.invalidContentLength(length)
            }
            framing = .length(remaining: count)
        } else if version == .http1_0 {
            framing = .untilClose
            connection.mustClose = true
        } else {
            framing = .chunked
        }
        appendHead(response, status: status, framing: framing)
        state = .streaming(isHead ? .none : framing)
    }

    /// Writes one part of a streamed body, and waits until the socket took it.
    public nonisolated(nonsending) func write(_ bytes: some Collection<UInt8>) async throws {
        guard case .streaming(let framing) = state else {
            throw hasStarted ? HTTPServerError.responseFinished : HTTPServerError.responseNotStarted
        }
        switch framing {
        case .none:
            return
        case .length(let remaining):
            guard bytes.count <= remaining else {
                connection.mustClose = true
                throw HTTPServerError.bodyLongerThanContentLength
            }
            connection.output.append(contentsOf: bytes)
            state = .streaming(.length(remaining: remaining - bytes.count))
        case .chunked:
            if bytes.isEmpty { return }  // an empty chunk would end the body
            Self.appendHex(bytes.count, to: &connection.output)
            connection.output.append(contentsOf: Self.crlf)
            connection.output.append(contentsOf: bytes)
            connection.output.append(contentsOf: Self.crlf)
        case .untilClose:
            connection.output.append(contentsOf: bytes)
        }
        try await connection.flush()
    }

    /// Ends a streamed body; `trailers` go out with a chunked one (and are dropped otherwise, as
    /// HTTP/1.1 has nowhere else to put them).
    public nonisolated(nonsending) func finish(trailers: HTTPFields = [:]) async throws {
        guard case .streaming(let framing) = state else {
            throw hasStarted ? HTTPServerError.responseFinished : HTTPServerError.responseNotStarted
        }
        state = .finished
        switch framing {
        case .none, .untilClose:
            break
        case .length(let remaining):
            if remaining > 0 {
                connection.mustClose = true
                throw HTTPServerError.bodyShorterThanContentLength(missing: remaining)
            }
        case .chunked:
            connection.output.append(contentsOf: Array("0\r\n".utf8))
            for field in trailers { Self.append(field, to: &connection.output) }
            connection.output.append(contentsOf: Self.crlf)
        }
        if connection.output.count >= HTTPConnection.flushThreshold { try await connection.flush() }
    }

    /// Writes what has been produced so far (a streamed head, say) without waiting for more.
    public nonisolated(nonsending) func flush() async throws {
        try await connection.flush()
    }

    /// A responder that returned with its streamed response open: finish it if that is
    /// well-formed, else the connection ends (the client sees a body cut short).
    nonisolated(nonsending) func finishForResponder() async throws {
        do {
            try await finish()
        } catch let error as HTTPServerError {
            connection.configuration.logger?.error("http: a responder returned with its response unfinished: \(error); closing the connection")
        }
    }

    // MARK: The head

    /// Appends the status line and fields, with the framing, `Date` and `Connection` fields.
    private func appendHead(_ response: HTTPResponse, status: HTTPResponse.Status, framing: Framing) {
        var closes = !keepAlive || connection.mustClose || connection.registry.isDraining
        var output = connection.output
        connection.output = []  // unique: appends below do not copy
        if body.isAwaitingContinue && status.kind != .informational {
            if status.kind == .successful {
                // The responder accepts the request before reading its body (a streamed echo,
                // say): the client gets its `100 Continue` now, before the final head (a 1xx
                // after it would be read as body), and sends the body, which can be read or
                // drained; the connection lives on.
                body.markContinueSent()
                output.append(contentsOf: Self.continueResponse)
            } else {
                // A refusal before the body (413, 417, 401...): the client need not send it, so
                // it cannot be drained, and the connection ends after this response.
                closes = true
            }
        }
        Self.appendStatusLine(status, to: &output)
        var hasDate = false
        for field in response.headerFields {
            switch field.name {
            case .contentLength, .transferEncoding:
                continue  // the writer's own, below
            case .connection:
                if field.value.lowercased().contains("close") { closes = true }
                continue  // written below, once
            case .date:
                hasDate = true
            default:
                break
            }
            Self.append(field, to: &output)
        }
        if !hasDate {
            output.append(contentsOf: Self.datePrefix)
            HTTPDate.append(to: &output)
            output.append(contentsOf: Self.crlf)
        }
        switch framing {
        case .length(let count):
            // 304 keeps no length it was not given; 1xx and 204 never have one.
            output.append(contentsOf: Self.contentLengthPrefix)
            Self.appendDecimal(count, to: &output)
            output.append(contentsOf: Self.crlf)
        case .chunked:
            output.append(contentsOf: Self.chunkedField)
        case .none:
            if status == .notModified, let length = response.headerFields[.contentLength] {
                output.append(contentsOf: Self.contentLengthPrefix)
                output.append(contentsOf: length.utf8)
                output.append(contentsOf: Self.crlf)
            }
        case .untilClose:
            closes = true
        }
        if closes {
            connection.mustClose = true
            output.append(contentsOf: Self.connectionClose)
        } else if version == .http1_0 {
            output.append(contentsOf: Self.connectionKeepAlive)
        }
        output.append(contentsOf: Self.crlf)
        connection.output = output
    }

    /// A response the server writes for the responder: 500 after a failure, say.
    func appendError(_ status: HTTPResponse.Status, reason: String?) {
        let text = Array("\(status.code) \(status.reasonPhrase)\(reason.map { ": \($0)" } ?? "")\n".utf8)
        appendHead(HTTPResponse(status: status, headerFields: [.contentType: "text/plain; charset=utf-8"]), status: status, framing: .length(remaining: text.count))
        if !isHead { connection.output.append(contentsOf: text) }
        state = .finished
    }

    /// A refusal the connection writes itself before any request it could hand to a responder:
    /// always closes.
    static func appendErrorResponse(_ status: HTTPResponse.Status, reason: String, version: HTTPVersion, to output: inout [UInt8]) {
        let text = Array("\(status.code) \(status.reasonPhrase): \(reason)\n".utf8)
        appendStatusLine(status, to: &output)
        output.append(contentsOf: datePrefix)
        HTTPDate.append(to: &output)
        output.append(contentsOf: crlf)
        output.append(contentsOf: Array("Content-Type: text/plain; charset=utf-8\r\n".utf8))
        output.append(contentsOf: contentLengthPrefix)
        appendDecimal(text.count, to: &output)
        output.append(contentsOf: crlf)
        output.append(contentsOf: connectionClose)
        output.append(contentsOf: crlf)
        output.append(contentsOf: text)
    }

    static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    private static let crlf: [UInt8] = [13, 10]
    private static let datePrefix: [UInt8] = Array("Date: ".utf8)
    private static let contentLengthPrefix: [UInt8] = Array("Content-Length: ".utf8)
    private static let chunkedField: [UInt8] = Array("Transfer-Encoding: chunked\r\n".utf8)
    private static let connectionClose: [UInt8] = Array("Connection: close\r\n".utf8)
    private static let connectionKeepAlive: [UInt8] = Array("Connection: keep-alive\r\n".utf8)
    private static let okStatusLine: [UInt8] = Array("HTTP/1.1 200 OK\r\n".utf8)

    static func statusAllowsBody(_ status: HTTPResponse.Status) -> Bool {
        !(status.kind == .informational || status == .noContent || status == .notModified)
    }

    private static func appendStatusLine(_ status: HTTPResponse.Status, to output: inout [UInt8]) {
        if status == .ok {
            output.append(contentsOf: okStatusLine)
            return
        }
        output.append(contentsOf: Array("HTTP/1.1 ".utf8))
        appendDecimal(status.code, to: &output)
        output.append(UInt8(ascii: " "))
        output.append(contentsOf: status.reasonPhrase.utf8)
        output.append(contentsOf: crlf)
    }

    private static func append(_ field: HTTPField, to output: inout [UInt8]) {
        output.append(contentsOf: field.name.rawName.utf8)
        output.append(UInt8(ascii: ":"))
        output.append(UInt8(ascii: " "))
        output.append(contentsOf: field.value.utf8)
        output.append(contentsOf: crlf)
    }

    static func appendDecimal(_ value: Int, to output: inout [UInt8]) {
        precondition(value >= 0)
        if value < 10 {
            output.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            output.append(contentsOf: buffer[(20 - count)...])
        }
    }

    private static func appendHex(_ value: Int, to output: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        while shift >= 0 {
            output.append(hex[(value >> shift) & 0xF])
            shift -= 4
        }
    }
}
