import HTTPTypes
import IOPoolHTTP
import Testing

private typealias T = ParserTestSupport

struct ParserFramingTests {
    private func head(_ fields: String, version: String = "HTTP/1.1") -> String {
        "POST / \(version)\r\nHost: h\r\n" + fields + "\r\n"
    }

    private func framing(_ fields: String, limits: HTTPRequestLimits = .init()) throws -> HTTPBodyFraming? {
        try T.parse(head(fields), limits: limits)?.framing
    }

    @Test func contentLengthFramesTheBodyAndZeroMeansNone() throws {
        #expect(try framing("Content-Length: 42\r\n") == .contentLength(42))
        #expect(try framing("content-length:0\r\n") == HTTPBodyFraming.none)
        #expect(try framing("Content-Length: 007\r\n") == .contentLength(7))
        #expect(try framing("") == HTTPBodyFraming.none)
    }

    @Test func identicalContentLengthsAreOneButDifferingOnesAre400() throws {
        #expect(try framing("Content-Length: 5\r\nContent-Length: 5\r\n") == .contentLength(5))
        #expect(try framing("Content-Length: 5, 5\r\n") == .contentLength(5))
        #expect(T.error(head("Content-Length: 5\r\nContent-Length: 6\r\n"))
            == HTTPRequestError(status: .badRequest, reason: "differing Content-Length values 5 and 6"))
        #expect(T.error(head("Content-Length: 5, 6\r\n"))?.status == .badRequest)
        #expect(T.error(head("Content-Length: 5,\r\n"))?.reason == "empty Content-Length")
    }

    @Test(arguments: ["+5", "-5", "5a", "0x5", "5 5", "5.0", " ", "1_000"])
    func aMalformedContentLengthIs400(value: String) {
        let error = T.error(head("Content-Length: \(value)\r\n"))
        #expect(error?.status == .badRequest)
        #expect(error?.reason.contains("Content-Length") == true)
    }

    @Test func anOverflowingContentLengthIs400AndOneOverTheLimitIs413() {
        #expect(T.error(head("Content-Length: 99999999999999999999\r\n"))
            == HTTPRequestError(status: .badRequest, reason: "Content-Length '99999999999999999999' overflows"))
        var limits = HTTPRequestLimits()
        limits.maxBodySize = 100
        #expect(T.error(head("Content-Length: 100\r\n"), limits: limits) == nil)
        #expect(T.error(head("Content-Length: 101\r\n"), limits: limits)
            == HTTPRequestError(status: .contentTooLarge, reason: "Content-Length 101 over the limit of 100 bytes"))
    }

    @Test func transferEncodingChunkedFramesAChunkedBody() throws {
        #expect(try framing("Transfer-Encoding: chunked\r\n") == .chunked)
        #expect(try framing("transfer-encoding: CHUNKED\r\n") == .chunked)
        #expect(try framing("Transfer-Encoding: chunked , \r\n") == .chunked)
    }

    @Test func bothContentLengthAndTransferEncodingIs400() {
        let expected = HTTPRequestError(status: .badRequest, reason: "both Content-Length and Transfer-Encoding")
        #expect(T.error(head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")) == expected)
        #expect(T.error(head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")) == expected)
        #expect(T.error(head("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n")) == expected)
    }

    @Test func aFinalCodingOtherThanChunkedIs400() {
        let expected = HTTPRequestError(status: .badRequest, reason: "Transfer-Encoding whose final coding is not chunked")
        #expect(T.error(head("Transfer-Encoding: gzip\r\n")) == expected)
        #expect(T.error(head("Transfer-Encoding: xchunked\r\n")) == expected)
        #expect(T.error(head("Transfer-Encoding: chunked, gzip\r\n")) == expected)
        #expect(T.error(head("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n")) == expected)
        #expect(T.error(head("Transfer-Encoding: \r\n")) == HTTPRequestError(status: .badRequest, reason: "empty Transfer-Encoding"))
    }

    @Test func anUnknownCodingBeforeChunkedIs501() {
        #expect(T.error(head("Transfer-Encoding: gzip, chunked\r\n"))
            == HTTPRequestError(status: .notImplemented, reason: "unsupported transfer coding 'gzip'"))
        #expect(T.error(head("Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n"))?.status == .notImplemented)
    }

    @Test func chunkedTwiceOrWithParametersOrMalformedIs400() {
        #expect(T.error(head("Transfer-Encoding: chunked, chunked\r\n"))
            == HTTPRequestError(status: .badRequest, reason: "chunked transfer coding applied twice"))
        #expect(T.error(head("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"))?.status == .badRequest)
        #expect(T.error(head("Transfer-Encoding: chunked;x=1\r\n"))
            == HTTPRequestError(status: .badRequest, reason: "chunked transfer coding with parameters"))
        #expect(T.error(head("Transfer-Encoding: \"chunked\"\r\n"))?.reason == "malformed transfer coding '\"chunked\"'")
    }

    @Test func transferEncodingInAnHTTP10RequestIs400() {
        #expect(T.error(head("Transfer-Encoding: chunked\r\n", version: "HTTP/1.0"))
            == HTTPRequestError(status: .badRequest, reason: "Transfer-Encoding in an HTTP/1.0 request"))
    }

    @Test func keepAliveFollowsTheVersionAndConnectionTokens() throws {
        #expect(try T.parse(head(""))?.keepAlive == true)
        #expect(try T.parse(head("Connection: close\r\n"))?.keepAlive == false)
        #expect(try T.parse(head("Connection: Upgrade, CLOSE\r\n"))?.keepAlive == false)
        #expect(try T.parse(head("Connection: keep-alive\r\nConnection: close\r\n"))?.keepAlive == false)
        #expect(try T.parse(head("Connection: closed\r\n"))?.keepAlive == true)
        #expect(try T.parse(head("", version: "HTTP/1.0"))?.keepAlive == false)
        #expect(try T.parse(head("Connection: foo, keep-alive\r\n", version: "HTTP/1.0"))?.keepAlive == true)
        #expect(try T.parse(head("Connection: keep-alive, close\r\n", version: "HTTP/1.0"))?.keepAlive == false)
    }

    @Test func expect100ContinueIsNotedOnHTTP11AndOtherExpectationsAre417() throws {
        #expect(try T.parse(head("Expect: 100-continue\r\n"))?.expectsContinue == true)
        #expect(try T.parse(head("expect:  100-CONTINUE \r\n"))?.expectsContinue == true)
        #expect(try T.parse(head("Expect: 100-continue\r\n", version: "HTTP/1.0"))?.expectsContinue == false)
        #expect(T.error(head("Expect: 200-ok\r\n"))
            == HTTPRequestError(status: .expectationFailed, reason: "unsupported expectation '200-ok' (only 100-continue)"))
        #expect(T.error(head("Expect: 100-continue, x\r\n"))?.status == .expectationFailed)
    }

    @Test func framingFieldsStayInTheFields() throws {
        let parsed = try #require(try T.parse(head("Content-Length: 3\r\nConnection: close\r\n")))
        #expect(parsed.request.headerFields[.contentLength] == "3")
        #expect(parsed.request.headerFields[.connection] == "close")
    }
}
