/// What the fields that frame a request and govern its connection say (RFC 9112 §6, §9.3;
/// RFC 9110 §10.1.1): `Content-Length`, `Transfer-Encoding`, `Connection` and `Expect`, inspected
/// field by field as the head is parsed, then judged together by ``framing(limits:)``.
struct HTTPFramingRules {
    let version: HTTPVersion
    /// The one Content-Length value seen (every element of every Content-Length field must equal it).
    private var contentLength: Int? = nil
    private var sawTransferEncoding = false
    /// Whether the last transfer coding named so far is `chunked`.
    private var lastCodingIsChunked = false
    private var chunkedCount = 0
    /// The first coding other than chunked, for the 501 reason.
    private var unknownCoding: String? = nil
    private var sawClose = false
    private var sawKeepAlive = false
    private(set) var expectsContinue = false

    init(version: HTTPVersion) {
        self.version = version
    }

    var keepAlive: Bool {
        if sawClose { return false }
        return version == .http1_1 || sawKeepAlive
    }

    mutating func inspect(
        _ bytes: UnsafeRawBufferPointer, name: Range<Int>, value: Range<Int>, limits: HTTPRequestLimits
    ) throws(HTTPRequestError) {
        switch name.count {
        case 14 where bytes.equalsLowercased(name, "content-length"):
            try inspectContentLength(bytes, value)
        case 17 where bytes.equalsLowercased(name, "transfer-encoding"):
            try inspectTransferEncoding(bytes, value)
        case 10 where bytes.equalsLowercased(name, "connection"):
            Self.forEachElement(bytes, value) { element in
                if bytes.equalsLowercased(element, "close") { sawClose = true }
                if bytes.equalsLowercased(element, "keep-alive") { sawKeepAlive = true }
            }
        case 6 where bytes.equalsLowercased(name, "expect"):
            // RFC 9110 §10.1.1: 100-continue is the only expectation; anything else gets 417. An
            // HTTP/1.0 client cannot expect 100 Continue, so there it is ignored.
            guard bytes.equalsLowercased(value, "100-continue") else {
                throw HTTPRequestError(
                    status: .expectationFailed,
                    reason: "unsupported expectation '\(bytes.string(value).prefix(64))' (only 100-continue)")
            }
            expectsContinue = version == .http1_1
        default:
            break
        }
    }

    /// 1*DIGIT, as a list whose elements must all be the same number (RFC 9110 §8.6 lets a
    /// recipient accept `5, 5` or two equal fields as one; differing values are a smuggling attempt).
    private mutating func inspectContentLength(
        _ bytes: UnsafeRawBufferPointer, _ value: Range<Int>
    ) throws(HTTPRequestError) {
        var start = value.lowerBound
        while true {
            var end = start
            while end < value.upperBound && bytes[end] != HTTPByteClass.comma { end += 1 }
            let element = bytes.trimmingWhitespace(start..<end)
            let length = try Self.parseContentLength(bytes, element)
            if let contentLength, contentLength != length {
                throw HTTPRequestError(
                    status: .badRequest, reason: "differing Content-Length values \(contentLength) and \(length)")
            }
            contentLength = length
            if end == value.upperBound { break }
            start = end + 1
        }
    }

    private static func parseContentLength(
        _ bytes: UnsafeRawBufferPointer, _ element: Range<Int>
    ) throws(HTTPRequestError) -> Int {
        guard !element.isEmpty else {
            throw HTTPRequestError(status: .badRequest, reason: "empty Content-Length")
        }
        var length = 0
        for i in element {
            let byte = bytes[i]
            guard byte >= 0x30 && byte <= 0x39 else {
                throw HTTPRequestError(
                    status: .badRequest,
                    reason: "malformed Content-Length '\(bytes.string(element).prefix(32))' (digits only)")
            }
            let (times10, o1) = length.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(byte - 0x30))
            guard !o1 && !o2 else {
                throw HTTPRequestError(
                    status: .badRequest, reason: "Content-Length '\(bytes.string(element).prefix(32))' overflows")
            }
            length = sum
        }
        return length
    }

    /// transfer-coding *( OWS "," OWS transfer-coding ), over every Transfer-Encoding field in order.
    private mutating func inspectTransferEncoding(
        _ bytes: UnsafeRawBufferPointer, _ value: Range<Int>
    ) throws(HTTPRequestError) {
        if version == .http1_0 {
            // RFC 9112 §6.1: a server must treat a 1.0 request with Transfer-Encoding as faulty framing.
            throw HTTPRequestError(status: .badRequest, reason: "Transfer-Encoding in an HTTP/1.0 request")
        }
        sawTransferEncoding = true
        var failure: HTTPRequestError? = nil
        Self.forEachElement(bytes, value) { element in
            guard failure == nil else { return }
            var nameEnd = element.lowerBound
            while nameEnd < element.upperBound && HTTPByteClass.isToken(bytes[nameEnd]) { nameEnd += 1 }
            let codingName = element.lowerBound..<nameEnd
            if codingName.isEmpty
                || (nameEnd < element.upperBound && bytes[nameEnd] != HTTPByteClass.semicolon
                    && !HTTPByteClass.isWhitespace(bytes[nameEnd]))
            {
                failure = HTTPRequestError(
                    status: .badRequest, reason: "malformed transfer coding '\(bytes.string(element).prefix(64))'")
                return
            }
            if bytes.equalsLowercased(codingName, "chunked") {
                if nameEnd != element.upperBound {
                    failure = HTTPRequestError(status: .badRequest, reason: "chunked transfer coding with parameters")
                    return
                }
                chunkedCount += 1
                if chunkedCount > 1 {
                    failure = HTTPRequestError(status: .badRequest, reason: "chunked transfer coding applied twice")
                    return
                }
                lastCodingIsChunked = true
            } else {
                if unknownCoding == nil { unknownCoding = bytes.string(codingName) }
                lastCodingIsChunked = false
            }
        }
        if let failure { throw failure }
    }

    /// The framing once every field has been inspected (RFC 9112 §6.3).
    func framing(limits: HTTPRequestLimits) throws(HTTPRequestError) -> HTTPBodyFraming {
        if sawTransferEncoding {
            if contentLength != nil {
                throw HTTPRequestError(status: .badRequest, reason: "both Content-Length and Transfer-Encoding")
            }
            if chunkedCount == 0 && unknownCoding == nil {
                throw HTTPRequestError(status: .badRequest, reason: "empty Transfer-Encoding")
            }
            if !lastCodingIsChunked {
                // RFC 9112 §6.3 rule 4: a request's body cannot be framed then.
                throw HTTPRequestError(
                    status: .badRequest, reason: "Transfer-Encoding whose final coding is not chunked")
            }
            if let unknownCoding {
                throw HTTPRequestError(
                    status: .notImplemented, reason: "unsupported transfer coding '\(unknownCoding.prefix(64))'")
            }
            return .chunked
        }
        if let contentLength {
            if contentLength > limits.maxBodySize {
                throw HTTPRequestError(
                    status: .contentTooLarge,
                    reason: "Content-Length \(contentLength) over the limit of \(limits.maxBodySize) bytes")
            }
            return contentLength == 0 ? .none : .contentLength(contentLength)
        }
        return .none
    }

    /// Calls `body` with each non-empty, OWS-trimmed element of a comma list (RFC 9110 §5.6.1:
    /// empty elements are ignored).
    @inline(__always)
    static func forEachElement(
        _ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (Range<Int>) -> Void
    ) {
        var start = value.lowerBound
        while start <= value.upperBound {
            var end = start
            while end < value.upperBound && bytes[end] != HTTPByteClass.comma { end += 1 }
            let element = bytes.trimmingWhitespace(start..<end)
            if !element.isEmpty { body(element) }
            start = end + 1
        }
    }
}
