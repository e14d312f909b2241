import HTTPTypes
import IOPoolHTTP
import Testing

private typealias T = ParserTestSupport

struct ParserChunkedTests {
    private let sample = "5\r\nhello\r\nA;ext=1;q=\"x y\"\r\n, world!!!\r\n0\r\nX-Sum: 1\r\nx-b:  2 \r\n\r\nNEXT"

    @Test func chunksTrailersAndTheRestAfterTheBody() throws {
        let (body, trailers, rest) = try #require(try T.decodeChunked(T.bytes(sample)))
        #expect(String(decoding: body, as: UTF8.self) == "hello, world!!!")
        #expect(trailers.map(\.name.rawName) == ["X-Sum", "x-b"])
        #expect(trailers.map(\.value) == ["1", "2"])
        #expect(rest == T.bytes("NEXT"))
    }

    @Test(arguments: [1, 2, 3, 7, 64])
    func feedingInPiecesGivesTheSameBody(pieceSize: Int) throws {
        let whole = try #require(try T.decodeChunked(T.bytes(sample)))
        let pieces = try #require(try T.decodeChunked(T.bytes(sample), pieceSize: pieceSize))
        #expect(pieces.body == whole.body)
        #expect(pieces.trailers == whole.trailers)
        #expect(pieces.rest == whole.rest)
    }

    @Test func everySplitPointGivesTheSameResult() throws {
        let bytes = T.bytes(sample)
        let whole = try #require(try T.decodeChunked(bytes))
        for split in 0...bytes.count {
            var decoder = HTTPChunkedBodyDecoder()
            var body: [UInt8] = []
            var pending = Array(bytes[..<split])
            var fed = false
            var result: HTTPFields? = nil
            for _ in 0..<100 {
                let (event, consumed) = try T.withBuffer(pending) { buffer throws(HTTPRequestError) in
                    let (event, consumed) = try decoder.decode(buffer)
                    if case .data(let range) = event { body += buffer[range] }
                    return (event, consumed)
                }
                pending.removeFirst(consumed)
                if case .end(let trailers) = event { result = trailers; break }
                if case .needMoreBytes = event {
                    #expect(!fed, "split \(split): needs more bytes after all were fed")
                    if fed { break }
                    pending += bytes[split...]
                    fed = true
                }
            }
            #expect(body == whole.body, "split \(split)")
            #expect(result == whole.trailers, "split \(split)")
        }
    }

    @Test func anIncompleteBodyNeedsMoreBytes() throws {
        #expect(try T.decodeChunked(T.bytes("5\r\nhel")) == nil)
        #expect(try T.decodeChunked(T.bytes("5\r\nhello\r\n0\r\n")) == nil)
        #expect(try T.decodeChunked(T.bytes("5")) == nil)
    }

    @Test func uppercaseAndLeadingZeroHexSizes() throws {
        let body = try #require(try T.decodeChunked(T.bytes("0000a\r\n0123456789\r\n00\r\n\r\n"))).body
        #expect(body.count == 10)
    }

    @Test func aChunkSizeThatOverflowsIs400() {
        #expect(T.chunkedError("FFFFFFFFFFFFFFFFFF\r\n")
            == HTTPRequestError(status: .badRequest, reason: "chunk size overflows"))
        #expect(T.chunkedError("8000000000000000\r\n")?.reason == "chunk size overflows")
        #expect(T.chunkedError("00000000000000001\r\nx\r\n0\r\n\r\n")?.reason == "chunk size of more than 16 hex digits")
    }

    @Test func aChunkOverTheBodyLimitIs413BeforeItsData() {
        var limits = HTTPRequestLimits()
        limits.maxBodySize = 10
        #expect(T.chunkedError("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits: limits) == nil)
        #expect(T.chunkedError("5\r\nhello\r\n6\r\n", limits: limits)
            == HTTPRequestError(status: .contentTooLarge, reason: "chunked body over the limit of 10 bytes"))
        #expect(T.chunkedError("7FFFFFFFFFFFFFFF\r\n")?.status == .contentTooLarge)
    }

    @Test func malformedSizeLinesAre400() {
        #expect(T.chunkedError("\r\n")?.reason == "chunk size line not starting with a hex digit: 0x0D")
        #expect(T.chunkedError("-5\r\n")?.status == .badRequest)
        #expect(T.chunkedError(" 5\r\nhello\r\n0\r\n\r\n")?.status == .badRequest)
        #expect(T.chunkedError("0x5\r\nhello\r\n0\r\n\r\n")?.status == .badRequest)
        #expect(T.chunkedError("5 \r\nhello\r\n0\r\n\r\n")?.reason == "whitespace after the chunk size without an extension")
        #expect(T.chunkedError("5\nhello\r\n0\r\n\r\n")?.reason == "bare LF after a chunk size")
        #expect(T.chunkedError("5\rhello\r\n0\r\n\r\n")?.reason == "bare CR in a chunk size line")
        #expect(T.chunkedError("5;a\u{0}\r\nhello\r\n0\r\n\r\n")?.reason == "invalid byte 0x00 in a chunk extension")
    }

    @Test func chunkExtensionsUpToTheLimitAreIgnoredAndLongerOnesAre400() throws {
        var limits = HTTPRequestLimits()
        limits.maxChunkExtensionLength = 8
        let fits = try #require(try T.decodeChunked(T.bytes("1 ;a=bcde\r\nx\r\n0\r\n\r\n"), limits: limits))
        #expect(fits.body == T.bytes("x"))
        #expect(T.chunkedError("1;abcdefgh\r\nx\r\n0\r\n\r\n", limits: limits)
            == HTTPRequestError(status: .badRequest, reason: "chunk extension over the limit of 8 bytes"))
        // Without its CRLF yet, but already too long: refused without waiting.
        #expect(T.chunkedError("1;" + String(repeating: "a", count: 20), limits: limits)?.status == .badRequest)
    }

    @Test func chunkDataNotFollowedByCRLFIs400() {
        let expected = HTTPRequestError(status: .badRequest, reason: "chunk data not followed by CRLF")
        #expect(T.chunkedError("5\r\nhelloX\r\n0\r\n\r\n") == expected)
        #expect(T.chunkedError("5\r\nhello\rX0\r\n\r\n") == expected)
        #expect(T.chunkedError("5\r\nhello\n0\r\n\r\n") == expected)
    }

    @Test func trailersFollowTheHeadsFieldRules() {
        #expect(T.chunkedError("0\r\nX : 1\r\n\r\n")?.reason == "whitespace between the field name 'X' and its colon")
        #expect(T.chunkedError("0\r\nX: 1\r\n folded\r\n\r\n")?.reason == "obs-fold (a trailer line starting with whitespace) is not accepted")
        #expect(T.chunkedError("0\r\nX: a\u{0}b\r\n\r\n")?.status == .badRequest)
        #expect(T.chunkedError("0\r\nX: 1\n\r\n")?.reason == "bare LF (a line ending without CR) in the trailer section")
        #expect(T.chunkedError("0\r\nX: a\rb\r\n\r\n")?.reason == "bare CR in the value of the field 'X'")
        #expect(T.chunkedError("0\r\nNoColon\r\n\r\n")?.status == .badRequest)
    }

    @Test func tooManyOrTooLargeTrailersAre431() {
        var limits = HTTPRequestLimits()
        limits.maxHeaderCount = 2
        #expect(T.chunkedError("0\r\nA: 1\r\nB: 2\r\n\r\n", limits: limits) == nil)
        #expect(T.chunkedError("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits)
            == HTTPRequestError(status: .requestHeaderFieldsTooLarge, reason: "more than 2 trailer fields"))
        limits = HTTPRequestLimits()
        limits.maxHeaderBytes = 16
        #expect(T.chunkedError("0\r\nA: 123456789\r\n\r\n", limits: limits) == nil)
        #expect(T.chunkedError("0\r\nA: 1234567890\r\n\r\n", limits: limits)?.status == .requestHeaderFieldsTooLarge)
        #expect(T.chunkedError("0\r\nA: " + String(repeating: "a", count: 30), limits: limits)?.status == .requestHeaderFieldsTooLarge)
    }

    @Test func theDecoderIsResetAfterTheEnd() throws {
        var decoder = HTTPChunkedBodyDecoder()
        let first = try T.withBuffer(T.bytes("1\r\na\r\n0\r\n\r\n")) { buffer throws(HTTPRequestError) in
            var events: [HTTPChunkedBodyDecoder.Event] = []
            var offset = 0
            for _ in 0..<10 {
                let (event, consumed) = try decoder.decode(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
                offset += consumed
                events.append(event)
                if case .end = event { break }
            }
            return events
        }
        #expect(first == [.data(3..<4), .end(trailers: [:])])
        let second = try T.withBuffer(T.bytes("2\r\nbc\r\n")) { buffer throws(HTTPRequestError) in try decoder.decode(buffer) }
        #expect(second.event == .data(3..<5))
        #expect(second.consumed == 5)
    }
}
