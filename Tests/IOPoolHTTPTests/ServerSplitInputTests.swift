import HTTPTypes
import IOPool
import IOPoolHTTP
import Testing

/// A pipelined conversation of mixed requests (GET, HEAD, Content-Length and chunked bodies,
/// 100-continue, large heads) written in pieces cut at random places, with pauses between some:
/// every read of the server ends somewhere inside a head, a chunk size line, a body or a
/// trailer. Each request gets its answer, in order, and nothing is lost or crashes. (Both bugs
/// the real clients found were of this kind: state carried across a read boundary.)
@Suite(.timeLimit(.minutes(1)))
struct ServerSplitInputTests {
    struct Exchange {
        var request: [UInt8]
        var expected: String
        var isHead = false
    }

    /// A deterministic generator (SplitMix64), so that a failure can be replayed by its seed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    }

    static func conversation(_ random: inout Random, count: Int) -> [Exchange] {
        (0..<count).map { index in
            let payload = String(repeating: "p\(index % 10)", count: 1 + random.below(300))
            switch random.below(5) {
            case 0:
                return Exchange(request: Array("GET /get-\(index) HTTP/1.1\r\nHost: a\r\n\r\n".utf8), expected: "/get-\(index)")
            case 1:
                return Exchange(request: Array("HEAD /head-\(index) HTTP/1.1\r\nHost: a\r\n\r\n".utf8), expected: "", isHead: true)
            case 2:
                return Exchange(
                    request: Array("POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: \(payload.utf8.count)\r\n\r\n\(payload)".utf8), expected: payload)
            case 3:
                var chunked = "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                var rest = Substring(payload)
                while !rest.isEmpty {
                    let size = min(rest.count, 1 + random.below(50))
                    chunked += String(size, radix: 16) + (random.below(3) == 0 ? ";ext=1" : "") + "\r\n" + rest.prefix(size) + "\r\n"
                    rest = rest.dropFirst(size)
                }
                chunked += random.below(2) == 0 ? "0\r\n\r\n" : "0\r\nX-Trailer: t\r\n\r\n"
                return Exchange(request: Array(chunked.utf8), expected: payload)
            default:
                // A head of a few KiB: it spans reads and makes the input buffer grow.
                let fields = (0..<(20 + random.below(60))).map { "X-Field-\($0): \(String(repeating: "v", count: 40))\r\n" }.joined()
                return Exchange(request: Array("GET /big-\(index) HTTP/1.1\r\nHost: a\r\n\(fields)\r\n".utf8), expected: "/big-\(index)")
            }
        }
    }

    @Test(arguments: ServerPool.allCases, [1, 2, 3])
    func aConversationCutAtRandomPlacesIsAnsweredWholeAndInOrder(pool: ServerPool, seed: UInt64) async throws {
        let server = try await RunningServer.start(on: pool) { request, body, writer in
            let bytes = try await body.collect(upTo: 1 << 20)
            try await writer.respond(HTTPResponse(status: .ok), body: bytes.isEmpty ? Array((request.path ?? "").utf8) : bytes)
        }
        var random = Random(state: seed)
        let exchanges = Self.conversation(&random, count: 150)
        let stream = exchanges.flatMap(\.request)
        var cuts: [Int] = []
        var position = 0
        while position < stream.count {
            position = min(stream.count, position + 1 + random.below(random.below(4) == 0 ? 4000 : 200))
            cuts.append(position)
        }
        let client = try await server.connect()
        let writer = Task {
            var start = 0
            for (index, cut) in cuts.enumerated() {
                try await client.stream.write(stream[start..<cut])
                start = cut
                // A pause now and then, so that the server reads what was sent so far alone.
                if index % 7 == 0 { try await Task.sleep(for: .milliseconds(1)) }
            }
        }
        for (index, exchange) in exchanges.enumerated() {
            let response = try await client.response(toHead: exchange.isHead)
            #expect(response.status == 200, "request \(index) (seed \(seed))")
            if !exchange.isHead {
                #expect(response.text == exchange.expected, "request \(index) (seed \(seed))")
            }
        }
        try await writer.value
        client.close()
        try await server.stop()
    }
}
