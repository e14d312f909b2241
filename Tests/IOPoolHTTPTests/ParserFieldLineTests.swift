import HTTPTypes
import IOPoolHTTP
import Testing

private typealias T = ParserTestSupport

struct ParserFieldLineTests {
    private func head(_ fields: String) -> String { "GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n" }

    @Test func optionalWhitespaceAroundAValueIsTrimmedButInnerWhitespaceKept() throws {
        let parsed = try #require(try T.parse(head("X-A: \t a  b \t\r\nX-B:c\r\nX-C:\r\nX-D:   \r\n")))
        #expect(parsed.request.headerFields.map(\.value) == ["a  b", "c", "", ""])
    }

    @Test func obsTextInAValueIsKeptAsBytes() throws {
        var bytes = T.bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: caf")
        bytes += [0xC3, 0xA9, 0xFF]
        bytes += T.bytes("\r\n\r\n")
        let parsed = try #require(try T.parse(bytes)?.head)
        let field = try #require(parsed.request.headerFields.first)
        #expect(field.withUnsafeBytesOfValue { Array($0) } == T.bytes("caf") + [0xC3, 0xA9, 0xFF])
    }

    /// Values are checked eight bytes at a time: a bad byte or obs-text at any offset of a long
    /// value must still be seen.
    @Test func aLongValueIsCheckedAtEveryOffset() throws {
        for offset in 0..<24 {
            for byte: UInt8 in [0x00, 0x1F, 0x7F] {
                var bytes = T.bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: ")
                var value = [UInt8](repeating: 0x61, count: 24)
                value[offset] = byte
                bytes += value + T.bytes("\r\n\r\n")
                #expect(T.error(bytes)?.reason == "invalid byte \(byte == 0 ? "0x00" : byte == 0x1F ? "0x1F" : "0x7F") in the value of the field 'X-A'", "offset \(offset)")
            }
            var bytes = T.bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: ")
            var value = [UInt8](repeating: 0x61, count: 24)
            value[offset] = 0xE9
            bytes += value + T.bytes("\r\n\r\n")
            let field = try #require(try T.parse(bytes)?.head.request.headerFields.first)
            #expect(field.withUnsafeBytesOfValue { Array($0) } == value, "offset \(offset)")
        }
    }

    @Test func whitespaceBeforeTheColonIs400() {
        #expect(T.error(head("Content-Length : 5\r\n"))
            == HTTPRequestError(status: .badRequest, reason: "whitespace between the field name 'Content-Length' and its colon"))
        #expect(T.error(head("X\t: 5\r\n"))?.status == .badRequest)
    }

    @Test func obsFoldIs400() {
        #expect(T.error(head("X-A: a\r\n b\r\n"))
            == HTTPRequestError(status: .badRequest, reason: "obs-fold (a header line starting with whitespace) is not accepted"))
        #expect(T.error(head("X-A: a\r\n\tb\r\n"))?.status == .badRequest)
        // Before the first field too: a line starting with whitespace is never a field.
        #expect(T.error("GET / HTTP/1.1\r\n Host: h\r\n\r\n")?.status == .badRequest)
    }

    @Test(arguments: [UInt8(0x00), 0x01, 0x08, 0x0B, 0x0C, 0x1F, 0x7F])
    func aControlByteInAValueIs400(byte: UInt8) {
        var bytes = T.bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a")
        bytes.append(byte)
        bytes += T.bytes("b\r\n\r\n")
        let error = T.error(bytes)
        #expect(error?.status == .badRequest)
        #expect(error?.reason.hasPrefix("invalid byte 0x") == true)
        #expect(error?.reason.hasSuffix("in the value of the field 'X-A'") == true)
    }

    @Test func aBareCRInAValueOrNameIs400() {
        #expect(T.error(head("X-A: a\rb\r\n")) == HTTPRequestError(status: .badRequest, reason: "bare CR in the value of the field 'X-A'"))
        #expect(T.error(head("X\r-A: a\r\n")) == HTTPRequestError(status: .badRequest, reason: "bare CR in a header field name"))
        #expect(T.error(head("X-A: a\r\r\n")) == HTTPRequestError(status: .badRequest, reason: "bare CR in the value of the field 'X-A'"))
    }

    @Test func aBareLFIs400AsSoonAsItIsSeen() {
        let reason = "bare LF (a line ending without CR) in the head"
        #expect(T.error("GET / HTTP/1.1\nHost: h\r\n\r\n") == HTTPRequestError(status: .badRequest, reason: reason))
        #expect(T.error(head("X-A: a\n")) == HTTPRequestError(status: .badRequest, reason: reason))
        #expect(T.error("GET / HTTP/1.1\r\nHost: h\r\n\n") == HTTPRequestError(status: .badRequest, reason: reason))
        #expect(T.error("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") == HTTPRequestError(status: .badRequest, reason: reason))
        // Incomplete, yet already refused: the server need not wait for a blank line that may never come.
        #expect(T.error("GET / HTTP/1.1\r\nX-A: a\nHo") == HTTPRequestError(status: .badRequest, reason: reason))
    }

    @Test func aNameByteOutsideTheTokenSetIs400() {
        #expect(T.error(head("X(A): a\r\n")) == HTTPRequestError(status: .badRequest, reason: "invalid byte '(' (0x28) in a header field name"))
        #expect(T.error(head("X-A\u{0}: a\r\n"))?.reason == "invalid byte 0x00 in a header field name")
    }

    @Test func aLineWithoutColonOrWithEmptyNameIs400() {
        #expect(T.error(head("NoColon\r\n")) == HTTPRequestError(status: .badRequest, reason: "header field line without a colon: 'NoColon'"))
        #expect(T.error(head(": v\r\n")) == HTTPRequestError(status: .badRequest, reason: "empty field name in the header"))
    }

    @Test func http11NeedsExactlyOneHostWhichGoesToTheAuthority() throws {
        #expect(T.error("GET / HTTP/1.1\r\nX-A: a\r\n\r\n") == HTTPRequestError(status: .badRequest, reason: "HTTP/1.1 request without a Host field"))
        #expect(T.error("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n") == HTTPRequestError(status: .badRequest, reason: "more than one Host field"))
        #expect(T.error("GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n")?.status == .badRequest)
        let parsed = try #require(try T.parse("GET / HTTP/1.1\r\nX-A: a\r\nhOsT:  example.org \r\n\r\n"))
        #expect(parsed.request.authority == "example.org")
        #expect(parsed.request.headerFields.map(\.name.rawName) == ["X-A"])
        // RFC 9110 §7.2: an empty Host is what a client sends when the target has no authority.
        let empty = try #require(try T.parse("GET / HTTP/1.1\r\nHost:\r\n\r\n"))
        #expect(empty.request.authority == "")
    }

    @Test func aHeadOverMaxHeaderBytesIs431EvenBeforeItsEnd() {
        var limits = HTTPRequestLimits()
        limits.maxHeaderBytes = 64
        let base = "GET / HTTP/1.1\r\nHost: h\r\nX: "
        let fits = base + String(repeating: "a", count: 64 - base.utf8.count - 4) + "\r\n\r\n"
        #expect(fits.utf8.count == 64)
        #expect(T.error(fits, limits: limits) == nil)
        let over = base + String(repeating: "a", count: 64 - base.utf8.count - 3) + "\r\n\r\n"
        #expect(T.error(over, limits: limits) == HTTPRequestError(status: .requestHeaderFieldsTooLarge, reason: "header section over 64 bytes"))
        #expect(T.error(base + String(repeating: "a", count: 40), limits: limits)?.status == .requestHeaderFieldsTooLarge)
    }

    @Test func moreThanMaxHeaderCountFieldsIs431() {
        var limits = HTTPRequestLimits()
        limits.maxHeaderCount = 3
        #expect(T.error(head("A: 1\r\nB: 2\r\n"), limits: limits) == nil)
        #expect(T.error(head("A: 1\r\nB: 2\r\nC: 3\r\n"), limits: limits)
            == HTTPRequestError(status: .requestHeaderFieldsTooLarge, reason: "more than 3 header fields"))
    }

    @Test func mixedCaseAndUnusualNamesAreKeptAsSentAndCompareCaseInsensitively() throws {
        let parsed = try #require(try T.parse(head("content-TYPE: text/plain\r\nX-!#$%&'*+.^_`|~: y\r\nuser-agent: u\r\n")))
        #expect(parsed.request.headerFields.map(\.name.rawName) == ["content-TYPE", "X-!#$%&'*+.^_`|~", "user-agent"])
        #expect(parsed.request.headerFields[.contentType] == "text/plain")
        #expect(parsed.request.headerFields[.userAgent] == "u")
    }
}
