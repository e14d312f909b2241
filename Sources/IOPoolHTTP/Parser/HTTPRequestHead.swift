import HTTPTypes

/// The HTTP version of a request line: `HTTP/1.1` or `HTTP/1.0` (anything else is refused with
/// 505 by the parser).
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// How a request's body is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Hashable {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`, or `Content-Length: 0`.
    case none
    /// Exactly this many bytes follow the head.
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`: decoded with the parser's `HTTPChunkedBodyDecoder` (to come).
    case chunked
}

/// A parsed request head: the swift-http-types request plus what HTTP/1.1 adds to it.
public struct HTTPRequestHead: Sendable, Hashable {
    /// Method, path (the request-target as sent; `*` for the asterisk form), authority (the `Host`
    /// field, or the absolute form's), scheme (the absolute form's only) and every field but `Host`,
    /// in the order received.
    public var request: HTTPRequest
    public var version: HTTPVersion
    public var framing: HTTPBodyFraming
    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool
    /// `Expect: 100-continue` on an HTTP/1.1 request: the client waits for `100 Continue` (or a
    /// final response) before it sends the body.
    public var expectsContinue: Bool

    public init(
        request: HTTPRequest, version: HTTPVersion, framing: HTTPBodyFraming, keepAlive: Bool, expectsContinue: Bool
    ) {
        self.request = request
        self.version = version
        self.framing = framing
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
    }
}

/// Why a request was refused: the status to answer with (the connection is closed after it) and
/// what exactly was wrong, for the log and the response body.
///
/// The statuses: 400 (malformed or ambiguous framing: request smuggling is the threat), 413 (body
/// over ``HTTPRequestLimits/maxBodySize``), 414 (request line over its limit), 417 (an `Expect`
/// other than `100-continue`), 431 (header section over its byte or field limit), 501 (a transfer
/// coding other than chunked), 505 (an HTTP version other than 1.0 and 1.1).
public struct HTTPRequestError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var reason: String

    public init(status: HTTPResponse.Status, reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status.code) \(status.reasonPhrase): \(reason)" }
}

/// What a request may cost: the parser refuses anything larger with the status named on each
/// limit, so a slow or hostile client holds bounded memory. The defaults are nginx's and
/// SwiftNIO's orders of magnitude.
public struct HTTPRequestLimits: Sendable, Hashable {
    /// The request line, without its CRLF (414 beyond).
    public var maxRequestLineLength = 8 * 1024
    /// The whole head: request line, fields and the blank line (431 beyond).
    public var maxHeaderBytes = 64 * 1024
    /// Field lines in the head, and in a chunked body's trailer section (431 beyond).
    public var maxHeaderCount = 100
    /// Body bytes: a larger `Content-Length` is refused at the head, a chunked body once it
    /// passes this (413).
    public var maxBodySize = 16 * 1024 * 1024
    /// A chunk-size line's extensions (`;name=value`), without the size (400 beyond).
    public var maxChunkExtensionLength = 1024

    public init() {}
}
