import HTTPTypes
import IOPoolHTTP
import Testing

private typealias T = ParserTestSupport

struct ParserRequestLineTests {
    @Test func anOrdinaryGetGivesMethodPathAuthorityAndFieldsInOrder() throws {
        let head = try #require(
            try T.parse("GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8\r\nAccept: */*\r\nX-B: 2\r\nx-a: 1\r\n\r\n"))
        #expect(head.request.method == .get)
        #expect(head.request.path == "/a/b?c=d")
        #expect(head.request.authority == "example.com:8080")
        #expect(head.request.scheme == nil)
        #expect(head.version == .http1_1)
        #expect(head.framing == .none)
        #expect(head.keepAlive)
        #expect(!head.expectsContinue)
        #expect(head.request.headerFields.map(\.name.rawName) == ["User-Agent", "Accept", "X-B", "x-a"])
        #expect(head.request.headerFields.map(\.value) == ["curl/8", "*/*", "2", "1"])
        #expect(head.request.headerFields[.userAgent] == "curl/8")
        #expect(head.request.headerFields[HTTPField.Name("X-A")!] == "1")
    }

    @Test func consumedEndsAtTheBlankLineAndLeavesWhatFollows() throws {
        let text = "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next"
        let (_, consumed) = try #require(try T.parse(T.bytes(text)))
        #expect(consumed == text.utf8.count - "GET /next".utf8.count)
    }

    @Test func anIncompleteHeadGivesNil() throws {
        #expect(try T.parse("GET / HTTP/1.1\r\nHost: h\r\n") == nil)
        #expect(try T.parse("GET / HTTP/1.1\r\nHost: h\r\n\r") == nil)
        #expect(try T.parse("") == nil)
    }

    @Test func emptyLinesBeforeTheRequestLineAreIgnored() throws {
        let (head, consumed) = try #require(try T.parse(T.bytes("\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n")))
        #expect(head.request.path == "/x")
        #expect(consumed == 4 + "GET /x HTTP/1.1\r\nHost: h\r\n\r\n".utf8.count)
    }

    @Test func anUnusualTokenMethodIsKeptAsSent() throws {
        let head = try #require(try T.parse("M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(head.request.method.rawValue == "M-SEARCH")
    }

    @Test func aMethodByteOutsideTheTokenSetIs400() {
        let error = T.error("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(error?.status == .badRequest)
        #expect(error?.reason == "invalid byte '(' (0x28) in the method")
    }

    @Test(arguments: [
        ("GET  / HTTP/1.1", "empty request-target (more than one SP after the method?)"),
        ("GET / HTTP/1.1 ", "malformed HTTP version 'HTTP/1.1 '"),
        ("GET /  HTTP/1.1", "malformed HTTP version ' HTTP/1.1'"),
        (" GET / HTTP/1.1", "request line without a method"),
        ("GET\t/ HTTP/1.1", "invalid byte 0x09 in the method"),
        ("GET /\tx HTTP/1.1", "invalid byte 0x09 in the request-target"),
        ("GET", "request line without a request-target"),
        ("GET /", "request line without an HTTP version"),
        ("GET / http/1.1", "malformed HTTP version 'http/1.1'"),
        ("GET / HTTP/1.10", "malformed HTTP version 'HTTP/1.10'"),
        ("GET / HTTP/1", "malformed HTTP version 'HTTP/1'"),
        ("GET /\u{7F} HTTP/1.1", "invalid byte 0x7F in the request-target"),
        ("GET /\r HTTP/1.1", "bare CR in the request line"),
        ("GET / HTTP/1.1\r", "bare CR in the request line"),
    ])
    func aMalformedRequestLineIs400WithWhatWasWrong(line: String, reason: String) {
        let error = T.error(line + "\r\nHost: h\r\n\r\n")
        #expect(error == HTTPRequestError(status: .badRequest, reason: reason))
    }

    @Test func aTargetByteOverAsciiIs400() {
        var bytes = T.bytes("GET /")
        bytes.append(0xC3)
        bytes += T.bytes(" HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(T.error(bytes) == HTTPRequestError(status: .badRequest, reason: "invalid byte 0xC3 in the request-target"))
    }

    @Test(arguments: ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0"])
    func aVersionOtherThan10And11Is505(version: String) {
        let error = T.error("GET / \(version)\r\nHost: h\r\n\r\n")
        #expect(error?.status == .httpVersionNotSupported)
        #expect(error?.reason.hasPrefix(version) == true)
    }

    @Test func http10NeedsNoHostAndClosesUnlessKeepAlive() throws {
        let plain = try #require(try T.parse("GET / HTTP/1.0\r\n\r\n"))
        #expect(plain.version == .http1_0)
        #expect(plain.request.authority == nil)
        #expect(!plain.keepAlive)
        let kept = try #require(try T.parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))
        #expect(kept.keepAlive)
    }

    @Test func aRequestLineOverItsLimitIs414EvenBeforeItsEnd() {
        var limits = HTTPRequestLimits()
        limits.maxRequestLineLength = 32
        let exact = "GET /" + String(repeating: "a", count: 32 - 14) + " HTTP/1.1"
        #expect(exact.utf8.count == 32)
        #expect(T.error(exact + "\r\nHost: h\r\n\r\n", limits: limits) == nil)
        let longer = "GET /" + String(repeating: "a", count: 32 - 13) + " HTTP/1.1"
        #expect(T.error(longer + "\r\nHost: h\r\n\r\n", limits: limits)?.status == .uriTooLong)
        // No CRLF yet, but already longer than any allowed line: refused without waiting.
        let unfinished = "GET /" + String(repeating: "a", count: 40)
        #expect(T.error(unfinished, limits: limits)?.status == .uriTooLong)
        #expect(T.error(String(unfinished.prefix(33)), limits: limits) == nil)
    }

    @Test func absoluteFormSetsSchemeAuthorityAndPathAndWinsOverHost() throws {
        let head = try #require(try T.parse("GET http://example.com:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n"))
        #expect(head.request.scheme == "http")
        #expect(head.request.authority == "example.com:81")
        #expect(head.request.path == "/p?q")
        let bare = try #require(try T.parse("GET https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(bare.request.path == "/")
        let query = try #require(try T.parse("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(query.request.path == "/?x=1")
    }

    @Test func absoluteFormWithoutAuthorityIs400() {
        #expect(T.error("GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n")?.reason == "absolute-form request-target 'http:///p' without an authority")
    }

    @Test func authorityFormIsOnlyForConnect() throws {
        let head = try #require(try T.parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
        #expect(head.request.method == .connect)
        #expect(head.request.authority == "example.com:443")
        #expect(head.request.path == nil)
        #expect(T.error("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n")?.status == .badRequest)
        #expect(T.error("CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n")?.status == .badRequest)
        #expect(T.error("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n")?.status == .badRequest)
        #expect(T.error("CONNECT u@example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n")?.status == .badRequest)
    }

    @Test func asteriskFormIsOnlyForOptions() throws {
        let head = try #require(try T.parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(head.request.path == "*")
        #expect(T.error("GET * HTTP/1.1\r\nHost: h\r\n\r\n")
            == HTTPRequestError(status: .badRequest, reason: "the asterisk-form request-target '*' is only for OPTIONS"))
    }

    @Test func aTargetOfNoFormIs400() {
        #expect(T.error("GET index.html HTTP/1.1\r\nHost: h\r\n\r\n")?.status == .badRequest)
        #expect(T.error("GET 1http://x/ HTTP/1.1\r\nHost: h\r\n\r\n")?.status == .badRequest)
    }
}
