import Glibc
import IOPool
import Testing

@testable import iopool

/// `iopool http-server` as a user runs it: the built binary as a child process (`ChildProcess`),
/// on each pool, answering TechEmpower's plaintext and JSON tests over real sockets, 404 for other
/// paths, and ending on SIGTERM or SIGINT with a graceful shutdown (idle connections closed, the
/// request in flight answered with `Connection: close`) and exit status 0.
@Suite(.timeLimit(.minutes(2)))
struct HTTPServerCommandTests {
    @Test(arguments: ["io", "stealing"])
    func servesPlaintextAndJSONAndAnswers404ForOtherPaths(pool: String) async throws {
        let child = try ChildProcess(iopool: ["http-server", "--port", "0", "--threads", "2", "--pool", pool], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let client = try HTTPTestClient(try await TCPStream.connect(to: try await child.listeningAddress(within: .seconds(60))))
        defer { client.close() }

        // One keep-alive connection, one request at a time.
        let plaintext = try await client.exchange("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(plaintext.status == 200)
        #expect(plaintext.headers["content-type"] == "text/plain")
        #expect(plaintext.headers["content-length"] == "13")
        #expect(plaintext.headers["date"] != nil)
        #expect(plaintext.bodyText == "Hello, World!")

        let json = try await client.exchange("GET /json HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(json.status == 200)
        #expect(json.headers["content-type"] == "application/json")
        #expect(json.bodyText == #"{"message":"Hello, World!"}"#)

        let missing = try await client.exchange("GET /plaintext/more HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(missing.status == 404)
        #expect(missing.bodyText == "Not Found")

        // The query does not change the route; other methods on a route are 405; HEAD has no body.
        #expect(try await client.exchange("GET /plaintext?x=1 HTTP/1.1\r\nHost: t\r\n\r\n").bodyText == "Hello, World!")
        let post = try await client.exchange("POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
        let head = try await client.exchange("HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n", bodyExpected: false)
        #expect(head.status == 200)
        #expect(head.headers["content-length"] == "27")

        // Pipelined, as wrk's ×16 configurations send them: answered in order.
        try await client.send(String(repeating: "GET /json HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n", count: 8))
        for index in 0..<16 {
            let response = try await client.readResponse()
            #expect(response.status == (index.isMultiple(of: 2) ? 200 : 404), "response \(index)")
        }
        #expect(try child.exitStatusNow() == nil, "output: \(child.output)")
    }

    // A request in flight at the shutdown, made deterministic: the client sends a head with
    // `Content-Length: 5` and no body. The responder answers without reading it, so once the
    // client has that response the server is reading the body (to skip it before the next
    // head), which is neither idle nor done.

    @Test(arguments: [("io", SIGTERM), ("stealing", SIGTERM), ("io", SIGINT), ("stealing", SIGINT)])
    func aSignalClosesIdleConnectionsFinishesTheRequestInFlightAndExitsZero(pool: String, signal: Int32) async throws {
        let child = try ChildProcess(
            iopool: ["http-server", "--port", "0", "--threads", "1", "--pool", pool, "--grace-period", "60"], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let address = try await child.listeningAddress(within: .seconds(60))

        let idle = try HTTPTestClient(try await TCPStream.connect(to: address))
        defer { idle.close() }
        #expect(try await idle.exchange("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n").status == 200)

        let inFlight = try HTTPTestClient(try await TCPStream.connect(to: address))
        defer { inFlight.close() }
        #expect(try await inFlight.exchange("GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n").status == 200)

        kill(child.pid, signal)
        try await child.waitForOutput("shutting down", within: .seconds(30))
        #expect(try await idle.readToEnd() == [], "the idle keep-alive connection is closed by the shutdown")
        #expect(try child.exitStatusNow() == nil, "the shutdown waits for the request in flight; output: \(child.output)")

        // The body, and a whole next request in the same write: served, and told the connection closes.
        try await inFlight.send("hello" + "GET /json HTTP/1.1\r\nHost: t\r\n\r\n")
        let last = try await inFlight.readResponse()
        #expect(last.status == 200)
        #expect(last.bodyText == #"{"message":"Hello, World!"}"#)
        #expect(last.headers["connection"] == "close", "a response after the shutdown began closes its connection")
        #expect(try await inFlight.readToEnd() == [])

        let status = try await child.exitStatus(within: .seconds(30))
        #expect(status == .exited(0), "\(status); output: \(child.output)")
        #expect(child.output.contains("http-server: stopped"), "output: \(child.output)")
        #expect(!child.output.contains("grace period ("), "output: \(child.output)")
    }

    @Test func aConnectionStillOpenWhenTheGracePeriodEndsIsCancelledAndTheExitStatusIsOne() async throws {
        let child = try ChildProcess(
            iopool: ["http-server", "--port", "0", "--threads", "1", "--grace-period", "0.5"], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let client = try HTTPTestClient(try await TCPStream.connect(to: try await child.listeningAddress(within: .seconds(60))))
        defer { client.close() }
        // A body that never comes: the server waits for it through the whole grace period.
        #expect(try await client.exchange("GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n").status == 200)

        kill(child.pid, SIGTERM)
        let status = try await child.exitStatus(within: .seconds(30))
        #expect(status == .exited(1), "\(status); output: \(child.output)")
        #expect(child.output.contains("the grace period (0.5 s) passed"), "output: \(child.output)")
    }

    // FAILS on 7134580 (server bug, reported to the lead): a request followed, in the same read,
    // by the first bytes of the next one. `HTTPConnection.waitForRequest` starts with those bytes
    // buffered, so its first wait is not idle, and it force-unwraps `headDeadline`, which only
    // an idle wait that brought bytes sets: "Fatal error: Unexpectedly found nil" at
    // HTTPConnection.swift:100, and the whole process dies (signal 4), every connection with it.
    @Test(arguments: ["io", "stealing"])
    func aRequestFollowedByTheStartOfTheNextInOneWriteGetsBothAnswered(pool: String) async throws {
        let child = try ChildProcess(iopool: ["http-server", "--port", "0", "--threads", "1", "--pool", pool], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let client = try HTTPTestClient(try await TCPStream.connect(to: try await child.listeningAddress(within: .seconds(60))))
        defer { client.close() }
        do {
            try await client.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\n")
            #expect(try await client.readResponse().bodyText == "Hello, World!")
            try await client.send("\r\n")
            #expect(try await client.readResponse().bodyText == #"{"message":"Hello, World!"}"#)
            #expect(try child.exitStatusNow() == nil, "output: \(child.output)")
        } catch {
            // Say how the server ended, with its fatal error, not only what the socket saw.
            let status = try? await child.exitStatus(within: .seconds(10))
            let fatal = child.output.split(separator: "\n").first { $0.contains("Fatal error") } ?? "(no fatal error printed)"
            Issue.record("\(error); the server: \(status.map(String.init(describing:)) ?? "still running"), \(fatal)")
        }
    }

    // FAILS on 7134580, the same bug as a client meets it: 200 pipelined requests in one write
    // (7,400 bytes) are more than a connection's 4,096-byte input buffer, so one read ends inside
    // a request head and the server dies after about 110 responses, every connection with it.
    @Test(arguments: ["io", "stealing"])
    func twoHundredPipelinedRequestsInOneWriteAreAllAnswered(pool: String) async throws {
        let child = try ChildProcess(iopool: ["http-server", "--port", "0", "--threads", "1", "--pool", pool], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let client = try HTTPTestClient(try await TCPStream.connect(to: try await child.listeningAddress(within: .seconds(60))))
        defer { client.close() }
        var answered = 0
        do {
            try await client.send(String(repeating: "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", count: 200))
            for _ in 0..<200 where try await client.readResponse().bodyText == "Hello, World!" { answered += 1 }
        } catch {
            let status = try? await child.exitStatus(within: .seconds(10))
            let fatal = child.output.split(separator: "\n").first { $0.contains("Fatal error") } ?? "(no fatal error printed)"
            Issue.record("\(error) after \(answered) responses; the server: \(status.map(String.init(describing:)) ?? "still running"), \(fatal)")
        }
        #expect(answered == 200)
    }

    @Test(arguments: [
        (["--pool", "global"], "The value 'global' is invalid for '--pool <pool>'"),
        (["--port", "-1"], "--port -1: expected a whole number from 0 to 65535"),
        (["--threads", "0"], "--threads 0: expected a whole number of at least 1"),
        (["--grace-period", "-1"], "--grace-period -1.0: expected a finite number of seconds from 0 to"),
    ])
    func aBadOptionIsRefusedSayingWhy(arguments: [String], message: String) {
        let refusal: String
        do {
            _ = try IOPoolCommand.parseAsRoot(["http-server"] + arguments)
            refusal = "(accepted)"
        } catch {
            refusal = IOPoolCommand.message(for: error)
        }
        #expect(refusal.contains(message), "\(refusal)")
    }
}

/// A bare HTTP/1.1 client over `TCPStream`: sends bytes as given, reads responses framed by
/// Content-Length (all that `http-server` sends), keeping what follows for the next one.
final class HTTPTestClient {
    struct Response {
        var status: Int
        /// Lower-cased names; the last value of a repeated field.
        var headers: [String: String]
        var body: [UInt8]
        var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    private let stream: TCPStream
    private var buffered: [UInt8] = []

    init(_ stream: TCPStream) throws {
        self.stream = stream
    }

    func close() { stream.close() }

    func send(_ text: String) async throws {
        try await stream.write(Array(text.utf8))
    }

    func exchange(_ request: String, bodyExpected: Bool = true) async throws -> Response {
        try await send(request)
        return try await readResponse(bodyExpected: bodyExpected)
    }

    /// The next response; `bodyExpected: false` for a HEAD's, whose Content-Length has no body.
    func readResponse(bodyExpected: Bool = true) async throws -> Response {
        let headEnd = try await fill { buffer in
            buffer.indices.dropLast(3).first { buffer[$0...].starts(with: [13, 10, 13, 10]) }.map { $0 + 4 }
        }
        let lines = String(decoding: buffered[..<headEnd], as: UTF8.self).split(separator: "\r\n")
        let statusLine = lines.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
            throw TestFailure("not an HTTP/1.1 status line: \(lines.first ?? "")")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw TestFailure("not a field line: \(line)") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: " ")
        }
        let length = bodyExpected ? Int(headers["content-length"] ?? "") ?? 0 : 0
        let end = try await fill { buffer in buffer.count >= headEnd + length ? headEnd + length : nil }
        let body = Array(buffered[headEnd..<end])
        buffered.removeFirst(end)
        return Response(status: status, headers: headers, body: body)
    }

    /// What arrives until the server closes (a bounded amount: a test's leftovers).
    func readToEnd() async throws -> [UInt8] {
        var rest = buffered
        buffered = []
        while rest.count < 1 << 20 {
            let bytes = try await stream.read(maxBytes: 4096)
            if bytes.isEmpty { return rest }
            rest += bytes
        }
        throw TestFailure("more than 1 MiB before the end of the stream")
    }

    /// Reads until `complete` finds an end in the buffered bytes; throws at end of stream first.
    private func fill(until complete: ([UInt8]) -> Int?) async throws -> Int {
        while true {
            if let end = complete(buffered) { return end }
            guard buffered.count < 1 << 20 else { throw TestFailure("no complete response in 1 MiB") }
            let bytes = try await stream.read(maxBytes: 4096)
            if bytes.isEmpty { throw TestFailure("the server closed the connection mid-response; had: \(String(decoding: buffered, as: UTF8.self))") }
            buffered += bytes
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
