import Glibc
import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import IOPoolHTTP
import Synchronization
import Testing
import SystemPackage

/// Which pool a server test runs its server on: every server behaviour is tested on both.
enum ServerPool: String, CaseIterable, Sendable, CustomStringConvertible {
    case ioThreads, workStealing
    var description: String { rawValue }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A server running on a pool of its own for one test, on 127.0.0.1 and a free port.
final class RunningServer: Sendable {
    let server: HTTPServer
    let address: SocketAddress
    private let serving: Task<Void, any Error>
    private let stopPool: @Sendable () async -> Void

    /// Starts `server` on two threads of `pool`.
    static func start(_ server: HTTPServer, on pool: ServerPool, threads: Int = 2) async throws -> RunningServer {
        switch pool {
        case .ioThreads:
            let pool = try IOThreadPool(configuration: .init(threadCount: threads))
            let listeners = try pool.listenOnEveryThread(.loopbackIPv4(port: 0))
            let address = try listeners[0].localAddress
            // `serve` runs on the pool, not on Swift's global executor: in the whole suite other
            // tests can keep its two threads busy for seconds, and the accept loops would not
            // start until then (connections would wait in the backlog, answered late).
            let serving = try pool.spawn { try await server.serve(listeners, on: pool) }
            return RunningServer(server: server, address: address, serving: serving) { await pool.shutdown() }
        case .workStealing:
            let pool = try WorkStealingPool(configuration: .init(threadCount: threads))
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            let address = try listener.localAddress
            let serving = try pool.spawn { try await server.serve(listener, on: pool) }
            return RunningServer(server: server, address: address, serving: serving) { await pool.shutdown() }
        }
    }

    static func start(
        on pool: ServerPool, configuration: HTTPServer.Configuration = .init(),
        _ handler: nonisolated(nonsending) @escaping @Sendable (HTTPRequest, HTTPRequestBody, HTTPResponseWriter) async throws -> Void
    ) async throws -> RunningServer {
        try await start(HTTPServer(configuration: configuration, handler: handler), on: pool)
    }

    private init(server: HTTPServer, address: SocketAddress, serving: Task<Void, any Error>, stopPool: @escaping @Sendable () async -> Void) {
        self.server = server
        self.address = address
        self.serving = serving
        self.stopPool = stopPool
    }

    /// Graceful shutdown, then waits for `serve` to return (at most `limit`), then stops the pool.
    /// Throws if `serve` did not return in time or threw.
    func stop(within limit: Duration = .seconds(10)) async throws {
        server.beginGracefulShutdown()
        try await waitForServe(within: limit)
    }

    /// Waits for `serve` to return, at most `limit`; cancels it and throws if it did not.
    func waitForServe(within limit: Duration) async throws {
        let timedOut = Atomic<Bool>(false)
        let serving = self.serving
        let watchdog = Task {
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled else { return }
            timedOut.store(true, ordering: .releasing)
            serving.cancel()
        }
        let result = await serving.result
        watchdog.cancel()
        await stopPool()
        if timedOut.load(ordering: .acquiring) { throw TestFailure("serve did not return within \(limit)") }
        try result.get()
    }

    /// Cancels the task running `serve`.
    func cancel() { serving.cancel() }

    func connect() async throws -> TestClient {
        TestClient(try await TCPStream.connect(to: address))
    }
}

/// One response as a test client reads it.
struct ReceivedResponse: CustomStringConvertible {
    var status: Int
    var reason: String
    var version: String
    /// Names lowercased, in order.
    var fields: [(name: String, value: String)]
    var body: [UInt8]
    var trailers: [(name: String, value: String)] = []

    func field(_ name: String) -> String? { fields.first { $0.name == name.lowercased() }?.value }
    func fields(_ name: String) -> [String] { fields.filter { $0.name == name.lowercased() }.map(\.value) }
    var text: String { String(decoding: body, as: UTF8.self) }
    var closes: Bool { field("connection")?.lowercased() == "close" }
    var description: String { "\(version) \(status) \(reason) \(fields) \(text.debugDescription)" }
}

/// A raw HTTP/1.1 client over one TCP connection: writes bytes as given, parses responses
/// (Content-Length, chunked, or read to end of stream), so that tests see exactly what the
/// server sent.
final class TestClient: @unchecked Sendable {
    let stream: TCPStream
    private var input: [UInt8] = []
    private var position = 0
    private(set) var sawEndOfStream = false

    init(_ stream: TCPStream) { self.stream = stream }

    func send(_ text: String) async throws { try await stream.write(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) async throws { try await stream.write(bytes) }
    func close() { stream.close() }

    /// Reads more input; false at end of stream (or reset).
    private func fill() async throws -> Bool {
        if sawEndOfStream { return false }
        if position > 0 && position == input.count { (input, position) = ([], 0) }
        let count: Int
        do {
            count = try await stream.read(appendingTo: &input, maxBytes: 65536)
        } catch let error as IOError where error.errno == .connectionReset {
            sawEndOfStream = true
            return false
        }
        if count == 0 {
            sawEndOfStream = true
            return false
        }
        return true
    }

    private func line() async throws -> String {
        while true {
            if let index = input[position...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = index
                if end > position && input[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let text = String(decoding: input[position..<end], as: UTF8.self)
                position = index + 1
                return text
            }
            guard try await fill() else { throw TestFailure("end of stream inside a line: \(String(decoding: input[position...], as: UTF8.self).debugDescription)") }
        }
    }

    private func bytes(_ count: Int) async throws -> [UInt8] {
        while input.count - position < count {
            guard try await fill() else { throw TestFailure("end of stream with \(input.count - position) of \(count) body bytes") }
        }
        defer { position += count }
        return Array(input[position..<position + count])
    }

    /// Whether the server closed the connection (reads end of stream, within `limit`).
    func isClosed(within limit: Duration = .seconds(5)) async throws -> Bool {
        if position < input.count { return false }
        let stream = self.stream
        let timer = Task {
            try await Task.sleep(for: limit)
            stream.close()
        }
        defer { timer.cancel() }
        do {
            return try await !fill()
        } catch let error as IOError where error.errno == .badFileDescriptor {
            return false
        }
    }

    /// Reads one response. `toHead`: the request was HEAD, so no body follows whatever the
    /// fields say.
    func response(toHead: Bool = false) async throws -> ReceivedResponse {
        let statusLine = try await line()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestFailure("bad status line \(statusLine.debugDescription)") }
        var response = ReceivedResponse(
            status: status, reason: parts.count > 2 ? String(parts[2]) : "", version: String(parts[0]), fields: [], body: [])
        response.fields = try await fieldLines()
        if toHead || (100..<200).contains(status) || status == 204 || status == 304 { return response }
        if response.field("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                let sizeLine = try await line()
                guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw TestFailure("bad chunk size \(sizeLine.debugDescription)") }
                if size == 0 { break }
                response.body += try await bytes(size)
                guard try await line().isEmpty else { throw TestFailure("chunk not followed by CRLF") }
            }
            response.trailers = try await fieldLines()
        } else if let length = response.field("content-length") {
            guard let count = Int(length) else { throw TestFailure("bad content-length \(length)") }
            response.body = try await bytes(count)
        } else {
            while try await fill() {}
            response.body = Array(input[position...])
            position = input.count
        }
        return response
    }

    private func fieldLines() async throws -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        while true {
            let fieldLine = try await line()
            if fieldLine.isEmpty { return fields }
            guard let colon = fieldLine.firstIndex(of: ":") else { throw TestFailure("bad field line \(fieldLine.debugDescription)") }
            fields.append((
                fieldLine[..<colon].lowercased(),
                String(fieldLine[fieldLine.index(after: colon)...]).trimmingCharacters(in: " \t")))
        }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

/// A plain-text 200 with `text` as its body.
func ok(_ text: String) -> (HTTPResponse, [UInt8]) {
    (HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), Array(text.utf8))
}

/// Makes sure this process may open `needed` descriptors (raising the soft RLIMIT_NOFILE to the
/// hard one); records an issue, so that the test fails rather than skips, when it cannot.
func ensureDescriptorLimit(atLeast needed: Int) -> Bool {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
        Issue.record("getrlimit(RLIMIT_NOFILE) failed: errno \(errno)")
        return false
    }
    if limit.rlim_cur >= rlim_t(needed) { return true }
    guard limit.rlim_max >= rlim_t(needed) else {
        Issue.record("this test needs \(needed) file descriptors; the hard RLIMIT_NOFILE is \(limit.rlim_max)")
        return false
    }
    limit.rlim_cur = limit.rlim_max
    guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
        Issue.record("setrlimit(RLIMIT_NOFILE) failed: errno \(errno)")
        return false
    }
    return true
}
