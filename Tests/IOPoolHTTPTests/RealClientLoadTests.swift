import Testing

/// The server under the load generators' own clients: wrk (plain and pipelined ×16 through a Lua
/// script) and h2load's HTTP/1.1 client (plain and pipelined). Every response must be a 2xx and no
/// socket may fail; the counts show the load really ran. Each on both pools.
@Suite(.timeLimit(.minutes(1)))
struct RealClientLoadTests {
    static let processLimit = Duration.seconds(30)

    /// One GET answered before the load starts: wrk's short run then measures a server that is
    /// already accepting, not how soon its accept loop got a thread on a busy test machine.
    static func expectServing(_ server: RunningServer) async throws {
        let client = try await server.connect()
        try await client.send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try await client.response()
        client.close()
        guard response.status == 200, response.body == RealClientRoutes.plaintext else {
            throw TestFailure("the server's first answer is not the plaintext 200: \(response)")
        }
    }

    /// What wrk reports, parsed from its text output.
    struct WrkSummary {
        var requests: Int
        /// "connect 0, read 0, write 0, timeout 0": absent when every count is zero.
        var socketErrors: String?
        /// Absent when every response was a 2xx or 3xx.
        var non2xx3xx: Int?

        init(_ run: ClientRun) throws {
            let lines = run.stdoutText.split(separator: "\n").map { String($0).trimmingCharacters(in: " ") }
            guard let line = lines.first(where: { $0.contains(" requests in ") }), let count = Int(line.prefix { $0 != " " }) else {
                throw TestFailure("no 'N requests in' line in wrk's output\n\(run)")
            }
            requests = count
            socketErrors = lines.first { $0.hasPrefix("Socket errors:") }.map { String($0.dropFirst("Socket errors: ".count)) }
            non2xx3xx = lines.first { $0.hasPrefix("Non-2xx or 3xx responses:") }.flatMap { Int($0.split(separator: " ").last ?? "") }
        }
    }

    /// h2load's "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored,
    /// 0 timeout" line, as [label: count], and the 2xx count of its "status codes:" line.
    struct H2loadSummary {
        var requests: [String: Int] = [:]
        var status2xx: Int?

        init(_ run: ClientRun) throws {
            let lines = run.stdoutText.split(separator: "\n")
            guard let line = lines.first(where: { $0.hasPrefix("requests: ") }) else {
                throw TestFailure("no 'requests:' line in h2load's output\n\(run)")
            }
            for item in line.dropFirst("requests: ".count).split(separator: ",") {
                let words = item.split(separator: " ")
                if words.count == 2, let count = Int(words[0]) { requests[String(words[1])] = count }
            }
            if let codes = lines.first(where: { $0.hasPrefix("status codes: ") }) {
                let words = codes.dropFirst("status codes: ".count).split(separator: ",").first?.split(separator: " ")
                if let words, words.count == 2, words[1] == "2xx" { status2xx = Int(words[0]) }
            }
        }
    }

    @Test(arguments: ServerPool.allCases)
    func wrkGetsOnly2xxAndNoSocketErrors(pool: ServerPool) async throws {
        try await withRealClientServer(on: pool) { server in
            try await Self.expectServing(server)
            let run = try await ClientRun.run(
                .wrk, ["-t1", "-c16", "-d1s", "--timeout", "5s", server.url + "/plaintext"], within: Self.processLimit)
            #expect(run.succeeded, "\(run)")
            let summary = try WrkSummary(run)
            #expect(summary.requests > 0, "\(run)")
            #expect(summary.socketErrors == nil, "\(run)")
            #expect(summary.non2xx3xx == nil, "\(run)")
        }
    }

    @Test(arguments: ServerPool.allCases)
    func wrkPipelinedBy16GetsOnly2xxAndNoSocketErrors(pool: ServerPool) async throws {
        try await withRealClientServer(on: pool) { server in
            try await Self.expectServing(server)
            let run = try await ClientRun.run(
                .wrk, ["-t1", "-c4", "-d1s", "--timeout", "5s", "-s", clientScript("pipeline.lua"), server.url + "/plaintext"],
                within: Self.processLimit)
            #expect(run.succeeded, "\(run)")
            let summary = try WrkSummary(run)
            // At least one whole batch per connection came back.
            #expect(summary.requests >= 4 * 16, "\(run)")
            #expect(summary.socketErrors == nil, "\(run)")
            #expect(summary.non2xx3xx == nil, "\(run)")
        }
    }

    @Test(arguments: ServerPool.allCases)
    func h2loadHTTP1RequestsAllSucceed(pool: ServerPool) async throws {
        try await withRealClientServer(on: pool) { server in
            let run = try await ClientRun.run(.h2load, ["--h1", "-n", "2000", "-c", "8", server.url + "/plaintext"], within: Self.processLimit)
            #expect(run.succeeded, "\(run)")
            let summary = try H2loadSummary(run)
            #expect(summary.requests == ["total": 2000, "started": 2000, "done": 2000, "succeeded": 2000, "failed": 0, "errored": 0, "timeout": 0], "\(run)")
            #expect(summary.status2xx == 2000, "\(run)")
        }
    }

    @Test(arguments: ServerPool.allCases)
    func h2loadHTTP1PipelinedBy16AllSucceed(pool: ServerPool) async throws {
        try await withRealClientServer(on: pool) { server in
            // For HTTP/1.1, -m is the pipelining depth.
            let run = try await ClientRun.run(
                .h2load, ["--h1", "-n", "2000", "-c", "8", "-m", "16", server.url + "/plaintext"], within: Self.processLimit)
            #expect(run.succeeded, "\(run)")
            let summary = try H2loadSummary(run)
            #expect(summary.requests == ["total": 2000, "started": 2000, "done": 2000, "succeeded": 2000, "failed": 0, "errored": 0, "timeout": 0], "\(run)")
            #expect(summary.status2xx == 2000, "\(run)")
        }
    }
}
