import IOPool

/// A deliberately small HTTP/1.1 client over IOPool's TCPStream: it writes the bytes it is given
/// and reads one response (Content-Length or chunked), so each test sees exactly what went on the
/// wire. Every read is bounded by `timeout`.
final class RawHTTPClient {
    struct Response {
        var status: Int
        /// Names lowercased, in order.
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        var trailers: [(name: String, value: String)] = []
        var isChunked = false

        func header(_ name: String) -> String? { headers.first { $0.name == name.lowercased() }?.value }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct ProtocolError: Error, CustomStringConvertible {
        var description: String
    }

    let stream: TCPStream
    let reader: BufferedReader<TCPStream>
    let timeout: Duration

    init(connectingTo address: SocketAddress, timeout: Duration = .seconds(10)) async throws {
        stream = try await TCPStream.connect(to: address, timeout: timeout)
        reader = BufferedReader(stream)
        self.timeout = timeout
    }

    deinit { stream.close() }

    func send(_ text: String) async throws {
        try await stream.write(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await stream.write(bytes)
    }

    /// Reads the status line and the fields, leaving the body unread.
    func readHead() async throws -> Response {
        let statusLine = try await line()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
            throw ProtocolError(description: "bad status line: \(statusLine)")
        }
        var response = Response(status: status, headers: try await fields(), body: [])
        response.isChunked = response.header("transfer-encoding")?.lowercased() == "chunked"
        return response
    }

    /// Reads one whole response.
    func readResponse(isHead: Bool = false) async throws -> Response {
        var response = try await readHead()
        if isHead || [204, 304].contains(response.status) { return response }
        if response.isChunked {
            while let chunk = try await readChunk() { response.body += chunk }
            response.trailers = try await fields()
        } else if let length = response.header("content-length").flatMap(Int.init) {
            response.body = try await withTimeout(timeout) { try await reader.readExactly(length) }
        } else {
            throw ProtocolError(description: "no framing in \(response.headers)")
        }
        return response
    }

    /// One chunk of a chunked body; nil for the last (zero-size) chunk, before the trailers.
    func readChunk() async throws -> [UInt8]? {
        let sizeLine = try await line()
        guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else {
            throw ProtocolError(description: "bad chunk size line: \(sizeLine)")
        }
        if size == 0 { return nil }
        let chunk = try await withTimeout(timeout) { try await reader.readExactly(size) }
        guard try await line().isEmpty else { throw ProtocolError(description: "chunk not ended by CRLF") }
        return chunk
    }

    /// The trailer section after the last chunk.
    func readTrailers() async throws -> [(name: String, value: String)] { try await fields() }

    private func fields() async throws -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        for _ in 0..<200 {
            let field = try await line()
            if field.isEmpty { return fields }
            guard let colon = field.firstIndex(of: ":") else { throw ProtocolError(description: "bad field: \(field)") }
            fields.append((field[..<colon].lowercased(), field[field.index(after: colon)...].trimmingSpaces()))
        }
        throw ProtocolError(description: "more than 200 fields")
    }

    private func line() async throws -> String {
        guard let line = try await withTimeout(timeout, operation: { try await reader.readLine() }) else {
            throw ProtocolError(description: "connection closed")
        }
        return line
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
