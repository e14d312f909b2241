import Glibc
import HTTPTypes

/// The strict HTTP/1.1 request-head parser (RFC 9112 §2-§7, RFC 9110): request smuggling is the
/// threat, so everything two implementations could read differently is refused, with the status
/// and the exact reason (see ``HTTPRequestError``). The choices where RFC 9112 leaves room:
/// - bare LF as a line end: refused (400), as soon as it is seen;
/// - obs-fold: refused (400); whitespace before a field's colon: 400;
/// - empty lines before the request line: ignored (they count against maxHeaderBytes);
/// - identical Content-Length values (`5, 5` or two fields): accepted as one; differing: 400;
/// - both Content-Length and Transfer-Encoding: 400 (not "Transfer-Encoding wins");
/// - `Host` goes to `request.authority` and not into `headerFields` (as swift-nio-extras'
///   NIOHTTPTypesHTTP1 does); with the absolute form the target's authority wins (RFC 9112 §3.2.2);
/// - Cookie fields are kept as received, not split.
/// Where these make us stricter than h11, Differential/HTTPRequestParser/DOCUMENTED-DIFFERENCES.md
/// says why.
///
/// Incremental: ``parse(_:)`` is called with the bytes received so far from the start of the head;
/// it remembers how far it looked for the blank line, so each call costs only the new bytes until
/// the head is complete, then parses it in one pass. Bare LF, an over-long request line and an
/// over-large head are refused as soon as they are seen, not when the head completes.
public struct HTTPRequestHeadParser: Sendable {
    public let limits: HTTPRequestLimits

    /// How far the end-of-head search has looked (bytes before it hold no unexamined LF).
    private var scanned = 0
    /// The start of the line being scanned.
    private var lineStart = 0
    /// Where the request line starts: after the empty lines RFC 9112 §2.2 lets a server ignore.
    private var requestLineStart = 0
    /// The request line's end (its CR), once its LF has been seen.
    private var requestLineEnd: Int? = nil
    /// Field lines seen so far.
    private var fieldLineCount = 0

    public init(limits: HTTPRequestLimits = .init()) {
        self.limits = limits
    }

    /// Parses one request head from the start of `bytes`. nil: not complete yet — call again with
    /// the same bytes plus more. Returns the head and how many bytes it consumed (through the blank
    /// line); the parser is then reset for the next head. Throws HTTPRequestError (the connection
    /// closes after).
    public mutating func parse(
        _ bytes: UnsafeRawBufferPointer
    ) throws(HTTPRequestError) -> (head: HTTPRequestHead, consumed: Int)? {
        guard let headEnd = try findEndOfHead(bytes) else { return nil }
        let requestLine = requestLineStart..<requestLineEnd!
        self = HTTPRequestHeadParser(limits: limits)
        let head = try Self.parseHead(
            bytes, requestLine: requestLine, fieldsEnd: headEnd - 2, limits: limits)
        return (head, headEnd)
    }

    /// Finds the LF of the blank line ending the head and returns the index after it; checks on the
    /// way that every LF follows a CR and that the line and head limits hold.
    private mutating func findEndOfHead(_ bytes: UnsafeRawBufferPointer) throws(HTTPRequestError) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count
        while scanned < count {
            guard let found = memchr(base + scanned, Int32(HTTPByteClass.lf), count - scanned) else {
                scanned = count
                break
            }
            let lf = base.distance(to: UnsafeRawPointer(found))
            scanned = lf + 1
            if lf == lineStart || bytes[lf - 1] != HTTPByteClass.cr {
                // RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator; a proxy in
                // front that does not would frame differently, so it is refused.
                throw HTTPRequestError(status: .badRequest, reason: "bare LF (a line ending without CR) in the head")
            }
            let emptyLine = lf == lineStart + 1
            if requestLineEnd == nil {
                if emptyLine {
                    // An empty line before the request line (RFC 9112 §2.2: a server SHOULD ignore
                    // at least one); they count against maxHeaderBytes.
                    requestLineStart = lf + 1
                } else {
                    if lf - 1 - requestLineStart > limits.maxRequestLineLength {
                        throw Self.requestLineTooLong(limits)
                    }
                    requestLineEnd = lf - 1
                }
            } else if emptyLine {
                if lf + 1 > limits.maxHeaderBytes { throw Self.headTooLarge(limits) }
                return lf + 1
            } else {
                fieldLineCount += 1
                if fieldLineCount > limits.maxHeaderCount {
                    throw HTTPRequestError(
                        status: .requestHeaderFieldsTooLarge,
                        reason: "more than \(limits.maxHeaderCount) header fields")
                }
            }
            lineStart = lf + 1
        }
        if requestLineEnd == nil && count - requestLineStart > limits.maxRequestLineLength + 1 {
            throw Self.requestLineTooLong(limits)
        }
        if count > limits.maxHeaderBytes { throw Self.headTooLarge(limits) }
        return nil
    }

    /// The same reason however much of the line has arrived, so that every way of feeding a request
    /// gives the same error.
    private static func requestLineTooLong(_ limits: HTTPRequestLimits) -> HTTPRequestError {
        HTTPRequestError(
            status: .uriTooLong, reason: "request line over the limit of \(limits.maxRequestLineLength) bytes")
    }

    private static func headTooLarge(_ limits: HTTPRequestLimits) -> HTTPRequestError {
        HTTPRequestError(
            status: .requestHeaderFieldsTooLarge, reason: "header section over \(limits.maxHeaderBytes) bytes")
    }

    // MARK: The complete head

    /// Parses a head whose lines are known to end in CRLF: the request line in `requestLine`
    /// (without CRLF), the field lines from its end to `fieldsEnd` (the blank line's CR).
    private static func parseHead(
        _ bytes: UnsafeRawBufferPointer, requestLine: Range<Int>, fieldsEnd: Int, limits: HTTPRequestLimits
    ) throws(HTTPRequestError) -> HTTPRequestHead {
        let line = try HTTPRequestLineParser.parse(bytes, requestLine)
        var fields = HTTPFields()
        fields.reserveCapacity(8)
        var framing = HTTPFramingRules(version: line.version)
        var host: String? = nil
        var hostCount = 0
        var lineStart = requestLine.upperBound + 2
        while lineStart < fieldsEnd {
            // Every line ends in CRLF (checked while scanning), so the CR is the line's end.
            let lf = base(bytes).distance(
                to: UnsafeRawPointer(memchr(bytes.baseAddress! + lineStart, Int32(HTTPByteClass.lf), fieldsEnd + 1 - lineStart)!))
            let lineEnd = lf - 1
            let (name, value, valueIsASCII) = try HTTPFieldLineParser.split(bytes, line: lineStart..<lineEnd, section: "header")
            if bytes.equalsLowercased(name, "host") {
                hostCount += 1
                if hostCount > 1 {
                    throw HTTPRequestError(status: .badRequest, reason: "more than one Host field")
                }
                host = bytes.string(value)
            } else {
                try framing.inspect(bytes, name: name, value: value, limits: limits)
                fields.append(HTTPFieldLineParser.field(bytes, name: name, value: value, valueIsASCII: valueIsASCII))
            }
            lineStart = lf + 1
        }
        if line.version == .http1_1 && host == nil {
            throw HTTPRequestError(status: .badRequest, reason: "HTTP/1.1 request without a Host field")
        }
        let bodyFraming = try framing.framing(limits: limits)
        // RFC 9112 §3.2.2: with the absolute form, the target's authority wins over Host.
        let authority = line.authority ?? host
        let request = HTTPRequest(
            method: line.method, scheme: line.scheme, authority: authority, path: line.path, headerFields: fields)
        return HTTPRequestHead(
            request: request, version: line.version, framing: bodyFraming,
            keepAlive: framing.keepAlive, expectsContinue: framing.expectsContinue)
    }

    @inline(__always)
    private static func base(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer { bytes.baseAddress! }
}
