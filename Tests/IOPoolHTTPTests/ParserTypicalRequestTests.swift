import HTTPTypes
import IOPoolHTTP
import Testing

/// The request a load generator sends, parsed exactly. (How long the parse takes is measured by
/// `http-parser-probe bench` in `.ci/http-differential.sh`, not by a timed test.)
struct ParserTypicalRequestTests {
    /// What `wrk -H 'Connection: keep-alive'` and a browser-ish client send: five fields.
    static let wrkGet = Array(
        ("GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.2\r\n"
            + "Accept: text/plain,text/html;q=0.9\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n").utf8)

    @Test func aTypicalWrkGetParsesExactly() throws {
        var parser = HTTPRequestHeadParser()
        let (head, consumed) = try #require(
            try ParserTestSupport.withBuffer(Self.wrkGet) { buffer throws(HTTPRequestError) in try parser.parse(buffer) })
        #expect(consumed == Self.wrkGet.count)
        var expected = HTTPRequest(method: .get, scheme: nil, authority: "127.0.0.1:8080", path: "/plaintext")
        expected.headerFields = [
            .userAgent: "wrk/4.2", .accept: "text/plain,text/html;q=0.9", .acceptEncoding: "gzip, deflate",
            .connection: "keep-alive",
        ]
        #expect(head == HTTPRequestHead(request: expected, version: .http1_1, framing: .none, keepAlive: true, expectsContinue: false))
        #expect(head.request.headerFields.map(\.name.rawName) == ["User-Agent", "Accept", "Accept-Encoding", "Connection"])
    }
}
