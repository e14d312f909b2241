import Glibc
import HTTPTypes
import IOPoolHTTP

/// The server every real-client test runs: a few routes whose answers show what the server saw,
/// so a client's check covers both directions.
///
/// - `GET /plaintext`: `Hello, World!` as text/plain (TechEmpower's plaintext; the load tests' route).
/// - `POST|PUT /echo`: the whole body back with a `Content-Length`.
/// - `POST|PUT /stream-echo`: each part of the body back as it arrives (a chunked response).
/// - `GET /chunks/N`: N parts `part I\n` streamed (chunked, or to HTTP/1.0 until close) with an
///   `X-Parts: N` trailer.
/// - anything else: its path as the body.
///
/// Echoes say how the request was framed: `X-Request-Transfer-Encoding`, `X-Request-Content-Length`
/// and `X-Request-Expect` carry the request's fields ("none" where absent).
enum RealClientRoutes {
    static let plaintext = Array("Hello, World!".utf8)
    static let requestTransferEncoding = HTTPField.Name("X-Request-Transfer-Encoding")!
    static let requestContentLength = HTTPField.Name("X-Request-Content-Length")!
    static let requestExpect = HTTPField.Name("X-Request-Expect")!
    static let parts = HTTPField.Name("X-Parts")!

    static func start(on pool: ServerPool) async throws -> RunningServer {
        try await RunningServer.start(on: pool, respond)
    }

    nonisolated(nonsending) static func respond(_ request: HTTPRequest, _ body: HTTPRequestBody, _ writer: HTTPResponseWriter) async throws {
        let path = request.path ?? ""
        switch path {
        case "/plaintext":
            try await writer.respond(HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), body: plaintext)
        case "/echo":
            let bytes = try await body.collect(upTo: 1 << 26)
            try await writer.respond(echoHead(of: request), body: bytes)
        case "/stream-echo":
            try await writer.writeHead(echoHead(of: request))
            for try await part in body { try await writer.write(part) }
            try await writer.finish()
        case _ where path.hasPrefix("/chunks/"):
            guard let count = Int(path.dropFirst("/chunks/".count)), (0...10_000).contains(count) else {
                try await writer.respond(HTTPResponse(status: .badRequest))
                return
            }
            try await writer.writeHead(HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]))
            for index in 0..<count { try await writer.write(Array("part \(index)\n".utf8)) }
            try await writer.finish(trailers: [parts: "\(count)"])
        default:
            try await writer.respond(HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), body: Array(path.utf8))
        }
    }

    private static func echoHead(of request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(status: .ok, headerFields: [
            .contentType: "application/octet-stream",
            requestTransferEncoding: request.headerFields[.transferEncoding] ?? "none",
            requestContentLength: request.headerFields[.contentLength] ?? "none",
            requestExpect: request.headerFields[.expect] ?? "none",
        ])
    }

    /// What `GET /chunks/N` answers.
    static func chunksBody(_ count: Int) -> String {
        (0..<count).map { "part \($0)\n" }.joined()
    }
}

extension RunningServer {
    /// `http://127.0.0.1:PORT`, for the clients' command lines.
    var url: String { "http://127.0.0.1:\(address.port)" }
}

/// `count` bytes that no off-by-one, dropped, repeated or reordered block leaves unchanged (each
/// 4-byte group holds its own index), so an echoed body compares equal only when intact.
func numberedBytes(_ count: Int) -> [UInt8] {
    // Written through a buffer pointer: a debug build's per-byte appends would hold one of the
    // global executor's few threads for a noticeable time, delaying the other tests' servers.
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        let raw = UnsafeMutableRawBufferPointer(buffer)
        var index: UInt32 = 0
        var offset = 0
        while offset + 4 <= count {
            raw.storeBytes(of: index.bigEndian, toByteOffset: offset, as: UInt32.self)
            index &+= 1
            offset += 4
        }
        withUnsafeBytes(of: index.bigEndian) { last in
            for byte in 0..<(count - offset) { raw[offset + byte] = last[byte] }
        }
        initialized = count
    }
}

/// The directory of the Python clients (Tests/IOPoolHTTPTests/Clients), found from this file's
/// path: they are read in place, not bundled as resources.
func clientScript(_ name: String) -> String {
    let path = #filePath
    let directory = path[..<(path.lastIndex(of: "/") ?? path.startIndex)]
    return "\(directory)/Clients/\(name)"
}

/// Runs `body` against a fresh ``RealClientRoutes`` server on `pool`, and stops the server
/// gracefully afterwards, also when `body` throws (so a failed test leaves no pool running).
func withRealClientServer(on pool: ServerPool, _ body: (RunningServer) async throws -> Void) async throws {
    let server = try await RealClientRoutes.start(on: pool)
    do {
        try await body(server)
    } catch {
        try? await server.stop()
        throw error
    }
    try await server.stop()
}

/// Where `actual` first differs from `expected`, or nil when they are equal: for bodies too large
/// to print in a failed expectation.
func firstDifference(_ actual: [UInt8], _ expected: [UInt8]) -> String? {
    let common = min(actual.count, expected.count)
    let same = actual.withUnsafeBytes { a in expected.withUnsafeBytes { e in common == 0 || memcmp(a.baseAddress!, e.baseAddress!, common) == 0 } }
    if !same, let index = (0..<common).first(where: { actual[$0] != expected[$0] }) {
        return "byte \(index) is \(actual[index]), expected \(expected[index]) (\(actual.count) bytes, expected \(expected.count))"
    }
    if actual.count != expected.count { return "\(actual.count) bytes, expected \(expected.count)" }
    return nil
}

extension String {
    /// How many times `text` occurs (not overlapping).
    func occurrences(of text: String) -> Int { ranges(of: text).count }
}
