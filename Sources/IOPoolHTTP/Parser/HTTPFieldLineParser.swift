import Glibc
import HTTPTypes

/// One field line (RFC 9112 §5) of a head or of a chunked body's trailer section, shared by both so
/// that trailers follow exactly the head's rules.
enum HTTPFieldLineParser {
    /// Splits `line` (without its CRLF) into the name and the OWS-trimmed value, refusing (400)
    /// obs-fold, whitespace before the colon, a non-token name byte, a missing colon, and a value
    /// byte that is not VCHAR, obs-text, SP or HTAB (NUL, bare CR, the other controls, DEL).
    @inline(__always)
    static func split(
        _ bytes: UnsafeRawBufferPointer, line: Range<Int>, section: StaticString
    ) throws(HTTPRequestError) -> (name: Range<Int>, value: Range<Int>, valueIsASCII: Bool) {
        var i = line.lowerBound
        let end = line.upperBound
        if i < end && HTTPByteClass.isWhitespace(bytes[i]) {
            // RFC 9112 §5.2: obs-fold is refused (a server may reject it with 400), because a
            // recipient that unfolds and one that does not see different fields.
            throw HTTPRequestError(
                status: .badRequest, reason: "obs-fold (a \(section) line starting with whitespace) is not accepted")
        }
        while i < end {
            let byte = bytes[i]
            if byte == HTTPByteClass.colon { break }
            if !HTTPByteClass.isToken(byte) {
                if HTTPByteClass.isWhitespace(byte) {
                    throw HTTPRequestError(
                        status: .badRequest,
                        reason: "whitespace between the field name '\(bytes.string(line.lowerBound..<i))' and its colon")
                }
                if byte == HTTPByteClass.cr {
                    throw HTTPRequestError(status: .badRequest, reason: "bare CR in a \(section) field name")
                }
                throw HTTPRequestError(
                    status: .badRequest, reason: "invalid byte \(HTTPByteClass.describe(byte)) in a \(section) field name")
            }
            i += 1
        }
        if i == end {
            throw HTTPRequestError(
                status: .badRequest, reason: "\(section) field line without a colon: '\(bytes.string(line).prefix(64))'")
        }
        if i == line.lowerBound {
            throw HTTPRequestError(status: .badRequest, reason: "empty field name in the \(section)")
        }
        let name = line.lowerBound..<i
        let value = bytes.trimmingWhitespace((i + 1)..<end)
        var j = value.lowerBound
        var highBits: UInt8 = 0
        // Eight bytes at a time while none is a control or DEL (the byte loop below then says which
        // one is, or passes HTAB).
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var wordHighBits: UInt64 = 0
        while j + 8 <= value.upperBound {
            let word = bytes.loadUnaligned(fromByteOffset: j, as: UInt64.self)
            let belowSpace = (word &- ones &* 0x20) & ~word & highs
            let del = word ^ (ones &* 0x7F)
            let isDel = (del &- ones) & ~del & highs
            if belowSpace | isDel != 0 { break }
            wordHighBits |= word
            j += 8
        }
        if wordHighBits & highs != 0 { highBits = 0x80 }
        while j < value.upperBound {
            let byte = bytes[j]
            highBits |= byte
            if !HTTPByteClass.isFieldValue(byte) {
                if byte == HTTPByteClass.cr {
                    throw HTTPRequestError(
                        status: .badRequest, reason: "bare CR in the value of the field '\(bytes.string(name))'")
                }
                throw HTTPRequestError(
                    status: .badRequest,
                    reason: "invalid byte \(HTTPByteClass.describe(byte)) in the value of the field '\(bytes.string(name))'")
            }
            j += 1
        }
        return (name, value, highBits < 0x80)
    }

    /// The field for a checked name and value (`valueIsASCII`: no obs-text in it): the common names come from swift-http-types'
    /// statics when they arrive in their usual spelling (no validation, no lowercasing), others
    /// through the checking initialiser (the name is a token already, so it cannot fail).
    @inline(__always)
    static func field(
        _ bytes: UnsafeRawBufferPointer, name: Range<Int>, value: Range<Int>, valueIsASCII: Bool
    ) -> HTTPField {
        let fieldName = knownName(bytes, name) ?? HTTPField.Name(bytes.string(name))!
        if valueIsASCII {
            // The String path of swift-http-types is specialised for String; the bytes path goes
            // through generic metadata look-ups. ASCII decodes to the same bytes.
            return HTTPField(name: fieldName, value: bytes.string(value))
        }
        // obs-text is not UTF-8: keep the bytes as they are.
        let valueBytes = UnsafeBufferPointer<UInt8>(
            start: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + value.lowerBound, count: value.count)
        return HTTPField(name: fieldName, value: valueBytes)
    }

    @inline(__always)
    static func knownName(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> HTTPField.Name? {
        // Dispatch on length and first byte, then one exact comparison: the spellings curl, wrk,
        // browsers and HTTP client libraries send.
        let first = bytes[name.lowerBound]
        switch (name.count, first) {
        case (6, 0x41) where bytes.equalsExactly(name, "Accept"): return .accept
        case (6, 0x61) where bytes.equalsExactly(name, "accept"): return HTTPField.Name(parsed: "accept")
        case (6, 0x43) where bytes.equalsExactly(name, "Cookie"): return .cookie
        case (6, 0x4F) where bytes.equalsExactly(name, "Origin"): return .origin
        case (6, 0x45) where bytes.equalsExactly(name, "Expect"): return .expect
        case (7, 0x52) where bytes.equalsExactly(name, "Referer"): return .referer
        case (10, 0x55) where bytes.equalsExactly(name, "User-Agent"): return .userAgent
        case (10, 0x75) where bytes.equalsExactly(name, "user-agent"): return HTTPField.Name(parsed: "user-agent")
        case (10, 0x43) where bytes.equalsExactly(name, "Connection"): return .connection
        case (10, 0x63) where bytes.equalsExactly(name, "connection"): return HTTPField.Name(parsed: "connection")
        case (12, 0x43) where bytes.equalsExactly(name, "Content-Type"): return .contentType
        case (12, 0x63) where bytes.equalsExactly(name, "content-type"): return HTTPField.Name(parsed: "content-type")
        case (13, 0x41) where bytes.equalsExactly(name, "Authorization"): return .authorization
        case (13, 0x43) where bytes.equalsExactly(name, "Cache-Control"): return .cacheControl
        case (14, 0x43) where bytes.equalsExactly(name, "Content-Length"): return .contentLength
        case (14, 0x63) where bytes.equalsExactly(name, "content-length"): return HTTPField.Name(parsed: "content-length")
        case (15, 0x41) where bytes.equalsExactly(name, "Accept-Encoding"): return .acceptEncoding
        case (15, 0x61) where bytes.equalsExactly(name, "accept-encoding"):
            return HTTPField.Name(parsed: "accept-encoding")
        case (15, 0x41) where bytes.equalsExactly(name, "Accept-Language"): return .acceptLanguage
        case (17, 0x54) where bytes.equalsExactly(name, "Transfer-Encoding"): return .transferEncoding
        case (17, 0x49) where bytes.equalsExactly(name, "If-Modified-Since"): return .ifModifiedSince
        case (13, 0x49) where bytes.equalsExactly(name, "If-None-Match"): return .ifNoneMatch
        default: return nil
        }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func equalsExactly(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        return memcmp(baseAddress! + range.lowerBound, literal.utf8Start, range.count) == 0
    }
}
