import HTTPTypes
import IOPoolHTTP
import Testing

private typealias T = ParserTestSupport

/// The server calls the parser with whatever has arrived: every split point of a request must give
/// what parsing it whole gives.
struct ParserIncrementalTests {
    static let requests: [String] = [
        "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
        "\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET http://example.com/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        "GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
    ]

    static var limits: HTTPRequestLimits {
        var limits = HTTPRequestLimits()
        limits.maxRequestLineLength = 64
        limits.maxHeaderCount = 4
        return limits
    }

    @Test(arguments: requests)
    func everySplitPointGivesTheSameResultAsTheWhole(request: String) {
        let bytes = T.bytes(request)
        let whole = T.parseInTwo(bytes, split: bytes.count, limits: Self.limits)
        for split in 0...bytes.count {
            let pieces = T.parseInTwo(bytes, split: split, limits: Self.limits)
            switch (whole, pieces) {
            case (.success(let a), .success(let b)):
                #expect(a?.head == b?.head, "split \(split)")
                #expect(a?.consumed == b?.consumed, "split \(split)")
            case (.failure(let a), .failure(let b)):
                #expect(a == b, "split \(split)")
            default:
                Issue.record("split \(split): whole \(whole), in two \(pieces)")
            }
        }
    }

    @Test func byteByByteFeedingParsesOnceAtTheBlankLine() throws {
        let bytes = T.bytes(Self.requests[1])
        var parser = HTTPRequestHeadParser()
        var parsedAt: [Int] = []
        for end in 0...bytes.count {
            let result = try T.withBuffer(Array(bytes[..<end])) { buffer throws(HTTPRequestError) in
                try parser.parse(buffer)
            }
            if let result {
                parsedAt.append(end)
                #expect(result.head.framing == .contentLength(5))
                break
            }
        }
        #expect(parsedAt == [bytes.count - 5])
    }

    @Test func theParserIsResetForTheNextPipelinedHead() throws {
        let bytes = T.bytes("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        var parser = HTTPRequestHeadParser()
        let (first, consumed) = try #require(
            try T.withBuffer(bytes) { buffer throws(HTTPRequestError) in try parser.parse(buffer) })
        let second = try #require(
            try T.withBuffer(Array(bytes[consumed...])) { buffer throws(HTTPRequestError) in try parser.parse(buffer) })
        #expect(first.request.path == "/1")
        #expect(second.head.request.path == "/2")
        #expect(consumed + second.consumed == bytes.count)
    }
}
