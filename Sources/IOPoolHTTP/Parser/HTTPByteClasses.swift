/// The byte classes of RFC 9110 §5.6 that the parser checks, as switches the optimiser turns into
/// range tests: no table to load, nothing generic, one byte at a time inside `withUnsafeBytes`
/// loops. The constants are computed properties, not `static let`s, whose lazy-global accessor
/// would be called on every use.
enum HTTPByteClass {
    @inline(__always) static var cr: UInt8 { 0x0D }
    @inline(__always) static var lf: UInt8 { 0x0A }
    @inline(__always) static var sp: UInt8 { 0x20 }
    @inline(__always) static var htab: UInt8 { 0x09 }
    @inline(__always) static var colon: UInt8 { 0x3A }
    @inline(__always) static var comma: UInt8 { 0x2C }
    @inline(__always) static var semicolon: UInt8 { 0x3B }

    /// tchar: `!#$%&'*+-.^_`|~`, digits and letters.
    @inline(__always)
    static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A:
            return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E:
            return true
        default:
            return false
        }
    }

    /// field-vchar / SP / HTAB: VCHAR, obs-text (0x80-0xFF), SP and HTAB. Not NUL, CR, LF, the
    /// other controls or DEL.
    @inline(__always)
    static func isFieldValue(_ byte: UInt8) -> Bool {
        byte == htab || (byte >= 0x20 && byte != 0x7F)
    }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == sp || byte == htab
    }

    /// A request-target byte: printable ASCII without SP. Controls, DEL and bytes over 0x7F are not
    /// in the URI grammar (RFC 3986), so they are refused rather than passed to the application.
    @inline(__always)
    static func isTarget(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: return Int(byte &- 0x30)
        case 0x41...0x46: return Int(byte &- 0x41 &+ 10)
        case 0x61...0x66: return Int(byte &- 0x61 &+ 10)
        default: return nil
        }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// Names a byte for an error reason: `0x00`, or the character when it is printable.
    static func describe(_ byte: UInt8) -> String {
        if byte > 0x20 && byte < 0x7F {
            return "'\(Character(Unicode.Scalar(byte)))' (0x\(String(byte, radix: 16, uppercase: true)))"
        }
        let hex = String(byte, radix: 16, uppercase: true)
        return "0x" + (hex.count == 1 ? "0" + hex : hex)
    }
}

extension UnsafeRawBufferPointer {
    /// Whether the bytes in `range` equal `literal` ignoring ASCII case (`literal` is lowercase).
    @inline(__always)
    func equalsLowercased(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let base = literal.utf8Start
        var i = 0
        while i < range.count {
            if HTTPByteClass.lowercased(self[range.lowerBound + i]) != base[i] { return false }
            i += 1
        }
        return true
    }

    /// The bytes in `range` as a String (UTF-8; the parser has already checked they are ASCII
    /// where it matters).
    @inline(__always)
    func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: self[range]), as: UTF8.self)
    }

    /// `range` without its leading and trailing SP and HTAB (OWS).
    @inline(__always)
    func trimmingWhitespace(_ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper && HTTPByteClass.isWhitespace(self[lower]) { lower += 1 }
        while upper > lower && HTTPByteClass.isWhitespace(self[upper - 1]) { upper -= 1 }
        return lower..<upper
    }
}
