import Testing

/// The server as Python's clients see it: http.client (the standard library's) for keep-alive and
/// chunked uploads, h11 (a strict HTTP/1.1 state machine) for pipelining and chunked responses.
/// The checks are in the scripts under Clients/; each prints "ok: ..." or what failed. Each on
/// both pools.
@Suite(.timeLimit(.minutes(1)))
struct RealClientPythonTests {
    static let processLimit = Duration.seconds(30)

    static func runScript(_ script: String, _ mode: String, against server: RunningServer) async throws -> ClientRun {
        try await ClientRun.run(.python3, [clientScript(script), mode, "\(server.address.port)"], within: processLimit)
    }

    @Test(arguments: ServerPool.allCases)
    func httpClientKeepsOneConnectionForManyRequests(pool: ServerPool) async throws {
        try await withRealClientServer(on: pool) { server in
            let run = try await Self.runScript("http_client_checks.py", "keep-alive", against: server)
            #expect(run.succeeded, "\(run)")
            #expect(run.stdoutText.hasPrefix("ok: 22 requests on one connection"), "\(run)")
        }
    }

    @Test(arguments: ServerPool.allCases)
    func httpClientChunkedUploadsAreEchoedIntact(pool: ServerPool) async throws {
        try await withRealClientServer(on: pool) { server in
            let run = try await Self.runScript("http_client_checks.py", "chunked-upload", against: server)
            #expect(run.succeeded, "\(run)")
            #expect(run.stdoutText.hasPrefix("ok: 2 chunked uploads"), "\(run)")
        }
    }

    @Test(arguments: ServerPool.allCases)
    func h11PipelinedRequestsAreAnsweredInOrder(pool: ServerPool) async throws {
        try await ClientTool.requirePythonModule("h11", install: "pip install h11")
        try await withRealClientServer(on: pool) { server in
            let run = try await Self.runScript("h11_checks.py", "pipeline", against: server)
            #expect(run.succeeded, "\(run)")
            #expect(run.stdoutText.hasPrefix("ok: 16 pipelined responses in request order"), "\(run)")
        }
    }

    @Test(arguments: ServerPool.allCases)
    func h11ReadsChunkedResponsesAndTheirTrailers(pool: ServerPool) async throws {
        try await ClientTool.requirePythonModule("h11", install: "pip install h11")
        try await withRealClientServer(on: pool) { server in
            let run = try await Self.runScript("h11_checks.py", "chunked", against: server)
            #expect(run.succeeded, "\(run)")
            #expect(run.stdoutText.hasPrefix("ok: 5 chunked responses"), "\(run)")
        }
    }
}
