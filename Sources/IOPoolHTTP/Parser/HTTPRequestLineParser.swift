import HTTPTypes

/// `method SP request-target SP HTTP-version` (RFC 9112 §3), without its CRLF: single SP
/// separators, a token method, one of the four target forms where its method allows it, and
/// HTTP/1.0 or HTTP/1.1.
enum HTTPRequestLineParser {
    struct RequestLine {
        var method: HTTPRequest.Method
        var version: HTTPVersion
        var scheme: String?
        var authority: String?
        var path: String?
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPRequestError) -> RequestLine {
        var i = line.lowerBound
        let end = line.upperBound
        while i < end && bytes[i] != HTTPByteClass.sp {
            let byte = bytes[i]
            if !HTTPByteClass.isToken(byte) {
                throw HTTPRequestError(
                    status: .badRequest,
                    reason: byte == HTTPByteClass.cr
                        ? "bare CR in the request line" : "invalid byte \(HTTPByteClass.describe(byte)) in the method")
            }
            i += 1
        }
        if i == line.lowerBound {
            throw HTTPRequestError(status: .badRequest, reason: "request line without a method")
        }
        if i == end {
            throw HTTPRequestError(status: .badRequest, reason: "request line without a request-target")
        }
        let methodRange = line.lowerBound..<i
        i += 1
        let targetStart = i
        while i < end && bytes[i] != HTTPByteClass.sp {
            let byte = bytes[i]
            if !HTTPByteClass.isTarget(byte) {
                throw HTTPRequestError(
                    status: .badRequest,
                    reason: byte == HTTPByteClass.cr
                        ? "bare CR in the request line"
                        : "invalid byte \(HTTPByteClass.describe(byte)) in the request-target")
            }
            i += 1
        }
        if i == targetStart {
            throw HTTPRequestError(
                status: .badRequest, reason: "empty request-target (more than one SP after the method?)")
        }
        if i == end {
            throw HTTPRequestError(status: .badRequest, reason: "request line without an HTTP version")
        }
        let target = targetStart..<i
        let version = try parseVersion(bytes, (i + 1)..<end)
        let method = knownMethod(bytes, methodRange) ?? HTTPRequest.Method(bytes.string(methodRange))!
        var requestLine = RequestLine(method: method, version: version)
        try parseTarget(bytes, target, into: &requestLine)
        return requestLine
    }

    /// `HTTP/` DIGIT `.` DIGIT: 400 when it is not that (a second SP, trailing bytes, a bare CR),
    /// 505 when it is but names a version other than 1.0 and 1.1.
    private static func parseVersion(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>
    ) throws(HTTPRequestError) -> HTTPVersion {
        let s = range.lowerBound
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        guard range.count == 8, bytes.equalsExactly(s..<(s + 5), "HTTP/"), isDigit(bytes[s + 5]),
            bytes[s + 6] == 0x2E, isDigit(bytes[s + 7])
        else {
            var shown = bytes.string(range)
            if shown.utf8.count > 32 { shown = String(shown.prefix(32)) + "…" }
            if bytes[range].contains(HTTPByteClass.cr) {
                throw HTTPRequestError(status: .badRequest, reason: "bare CR in the request line")
            }
            throw HTTPRequestError(status: .badRequest, reason: "malformed HTTP version '\(shown.debugDescription.dropFirst().dropLast())'")
        }
        let major = Int(bytes[s + 5] - 0x30)
        let minor = Int(bytes[s + 7] - 0x30)
        guard major == 1 && (minor == 0 || minor == 1) else {
            throw HTTPRequestError(
                status: .httpVersionNotSupported, reason: "HTTP/\(major).\(minor) is not supported (only 1.0 and 1.1)")
        }
        return minor == 1 ? .http1_1 : .http1_0
    }

    /// RFC 9112 §3.2: origin-form (`/path?query`), absolute-form (`scheme://authority/path`, what a
    /// proxy is sent; a server must accept it), authority-form (`host:port`) for CONNECT only and
    /// asterisk-form (`*`) for OPTIONS only.
    private static func parseTarget(
        _ bytes: UnsafeRawBufferPointer, _ target: Range<Int>, into line: inout RequestLine
    ) throws(HTTPRequestError) {
        let first = bytes[target.lowerBound]
        let isConnect = line.method == .connect
        if isConnect {
            try parseAuthorityForm(bytes, target, into: &line)
            return
        }
        if first == 0x2F {  // "/"
            line.path = bytes.string(target)
            return
        }
        if target.count == 1 && first == 0x2A {  // "*"
            guard line.method == .options else {
                throw HTTPRequestError(
                    status: .badRequest, reason: "the asterisk-form request-target '*' is only for OPTIONS")
            }
            line.path = "*"
            return
        }
        try parseAbsoluteForm(bytes, target, into: &line)
    }

    private static func parseAuthorityForm(
        _ bytes: UnsafeRawBufferPointer, _ target: Range<Int>, into line: inout RequestLine
    ) throws(HTTPRequestError) {
        // uri-host ":" port, nothing else: no path, no userinfo, a non-empty decimal port.
        var colon: Int? = nil
        for i in target {
            switch bytes[i] {
            case 0x2F, 0x3F, 0x23, 0x40:  // / ? # @
                throw HTTPRequestError(
                    status: .badRequest,
                    reason: "CONNECT needs the authority-form request-target host:port, not '\(bytes.string(target).prefix(64))'")
            case HTTPByteClass.colon:
                colon = i
            default:
                break
            }
        }
        guard let colon, colon > target.lowerBound, colon + 1 < target.upperBound,
            bytes[(colon + 1)..<target.upperBound].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
        else {
            throw HTTPRequestError(
                status: .badRequest,
                reason: "CONNECT needs the authority-form request-target host:port, not '\(bytes.string(target).prefix(64))'")
        }
        line.authority = bytes.string(target)
    }

    private static func parseAbsoluteForm(
        _ bytes: UnsafeRawBufferPointer, _ target: Range<Int>, into line: inout RequestLine
    ) throws(HTTPRequestError) {
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" authority path-abempty [ "?" query ].
        let notAllowed = HTTPRequestError(
            status: .badRequest,
            reason: "request-target '\(bytes.string(target).prefix(64))' is neither origin-form (/path), absolute-form (scheme://authority/path), nor '*' for OPTIONS")
        var i = target.lowerBound
        let isAlpha = { (b: UInt8) in (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }
        guard isAlpha(bytes[i]) else { throw notAllowed }
        while i < target.upperBound {
            let b = bytes[i]
            if isAlpha(b) || (b >= 0x30 && b <= 0x39) || b == 0x2B || b == 0x2D || b == 0x2E {
                i += 1
            } else {
                break
            }
        }
        let scheme = target.lowerBound..<i
        guard target.upperBound - i >= 3, bytes[i] == HTTPByteClass.colon, bytes[i + 1] == 0x2F, bytes[i + 2] == 0x2F else {
            throw notAllowed
        }
        i += 3
        let authorityStart = i
        while i < target.upperBound {
            let b = bytes[i]
            if b == 0x2F || b == 0x3F || b == 0x23 { break }
            i += 1
        }
        guard i > authorityStart else {
            throw HTTPRequestError(
                status: .badRequest, reason: "absolute-form request-target '\(bytes.string(target).prefix(64))' without an authority")
        }
        line.scheme = bytes.string(scheme)
        line.authority = bytes.string(authorityStart..<i)
        if i == target.upperBound {
            line.path = "/"
        } else if bytes[i] == 0x2F {
            line.path = bytes.string(i..<target.upperBound)
        } else {
            // "http://host?x" has an empty path: the origin-form equivalent is "/?x" (RFC 9112 §3.2.1).
            line.path = "/" + bytes.string(i..<target.upperBound)
        }
    }

    /// The methods every server sees, without the token check and the String allocation.
    @inline(__always)
    private static func knownMethod(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTPRequest.Method? {
        switch range.count {
        case 3:
            if bytes.equalsExactly(range, "GET") { return .get }
            if bytes.equalsExactly(range, "PUT") { return .put }
        case 4:
            if bytes.equalsExactly(range, "POST") { return .post }
            if bytes.equalsExactly(range, "HEAD") { return .head }
        case 5:
            if bytes.equalsExactly(range, "PATCH") { return .patch }
        case 6:
            if bytes.equalsExactly(range, "DELETE") { return .delete }
        case 7:
            if bytes.equalsExactly(range, "OPTIONS") { return .options }
            if bytes.equalsExactly(range, "CONNECT") { return .connect }
        default:
            break
        }
        return nil
    }
}
