import Foundation
import IOPool

/// One request before a server is measured on a route: `GET PATH` with `Connection: close`,
/// whose answer must be status 200, the route's Content-Type and its body (JSON compared as JSON).
/// wrk counts only statuses of 400 and more as errors and never looks at a body; this catches a
/// server that answers the load with the wrong thing quickly (a 204, a 301, an empty 200).
enum HTTPProbe {
    static func check(port: UInt16, route: TechEmpowerRoute) async throws(BenchError) {
        let response: [UInt8]
        do {
            response = try await withTimeout(.seconds(10)) { try await exchange(port: port, path: route.path) }
        } catch {
            throw BenchError("GET \(route.path): \(error)")
        }
        let (status, headers, body) = try parse(response, path: route.path)
        guard status == 200 else {
            throw BenchError("GET \(route.path) answered status \(status), not 200: '\(preview(response))'")
        }
        let contentType = headers["content-type"] ?? ""
        guard contentType.lowercased().hasPrefix(route.contentType) else {
            throw BenchError("GET \(route.path) answered Content-Type '\(contentType)', not \(route.contentType)")
        }
        guard sameBody(body, route) else {
            throw BenchError("GET \(route.path) answered the body '\(String(decoding: body, as: UTF8.self))', not '\(route.body)'")
        }
    }

    private static func exchange(port: UInt16, path: String) async throws -> [UInt8] {
        let stream = try await TCPStream.connect(to: try SocketAddress(host: "127.0.0.1", port: port))
        defer { stream.close() }
        try await stream.write(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8))
        var response: [UInt8] = []
        // To the server's close (Connection: close), at most 64 KiB.
        while response.count < 65536 {
            let bytes = try await stream.read(maxBytes: 65536 - response.count)
            if bytes.isEmpty { break }
            response += bytes
        }
        return response
    }

    /// The status, the header fields (names lowercased) and the body (Content-Length, chunked,
    /// or to the close).
    private static func parse(_ response: [UInt8], path: String) throws(BenchError) -> (Int, [String: String], [UInt8]) {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = response.indices.first(where: { response[$0...].starts(with: separator) }) else {
            throw BenchError("GET \(path): not an HTTP response head: '\(preview(response))'")
        }
        let lines = String(decoding: response[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw BenchError("GET \(path): not an HTTP/1 status line: '\(lines[0])'")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(response[(end + separator.count)...])
        if let length = headers["content-length"].flatMap(Int.init) {
            body = Array(body.prefix(length))
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            body = dechunk(body)
        }
        return (status, headers, body)
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var body: [UInt8] = []
        var rest = bytes[...]
        // Bounded: each pass consumes a chunk's size line, or stops.
        while let lineEnd = rest.indices.first(where: { rest[$0...].starts(with: [13, 10]) }) {
            let sizeText = String(decoding: rest[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            body += rest[start..<min(start + size, rest.endIndex)]
            rest = rest[min(start + size + 2, rest.endIndex)...]
        }
        return body
    }

    private static func sameBody(_ body: [UInt8], _ route: TechEmpowerRoute) -> Bool {
        guard route == .json else { return body == Array(route.body.utf8) }
        guard let received = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: String] else { return false }
        return received == ["message": "Hello, World!"]
    }

    private static func preview(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(200), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\\r\\n")
    }
}
