import ArgumentParser
import Foundation
import Testing

@testable import iopool

/// A tiny HTTP/1.1 server in Python (a thread per connection, each response in one write), as a
/// stand-in for any `--peer` command: TechEmpower's two routes on the port from `{port}`, exit
/// status 0 on SIGTERM. `failsAfter: N` answers 500 from the N+1st request on; `wrongBody` answers
/// /plaintext with another body (a 200 that wrk would count as fine).
private func pythonHTTPServer(failsAfter: Int? = nil, wrongBody: Bool = false) -> String {
    """
    python3 -c 'import http.server, signal, socketserver, sys, threading
    fails_after = int(sys.argv[2]); wrong_body = sys.argv[3] == "wrong"
    lock = threading.Lock(); served = [0]
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            with lock:
                served[0] += 1; n = served[0]
            routes = {"/plaintext": ("text/plain", b"Hello, Wrong!" if wrong_body else b"Hello, World!"), "/json": ("application/json", b"{\\"message\\": \\"Hello, World!\\"}")}
            status, (kind, body) = (200, routes[self.path]) if self.path in routes else (404, ("text/plain", b"Not Found"))
            if 0 <= fails_after < n: status = 500
            head = "HTTP/1.1 %d X\\r\\nContent-Type: %s\\r\\nContent-Length: %d\\r\\n\\r\\n" % (status, kind, len(body))
            self.wfile.write(head.encode() + body)
        def log_message(self, *args): pass
    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True; allow_reuse_address = True; request_queue_size = 128
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening on 127.0.0.1:" + sys.argv[1], flush=True)
    server.serve_forever()
    ' {port} \(failsAfter ?? -1) \(wrongBody ? "wrong" : "right")
    """
}

@Suite(.timeLimit(.minutes(2)))
struct HTTPBenchTests {
    @Test func httpBenchmarkMeasuresEveryServerInEveryRoundAndComparesToTheFirst() async throws {
        let directory = try temporaryDirectory()
        let options = HTTPBenchmark.Options(
            servers: [.init(name: "python-a", command: pythonHTTPServer()), .init(name: "python b", command: pythonHTTPServer())],
            configurations: [.init(connections: 2, depth: 1, route: "/plaintext"), .init(connections: 2, depth: 4, route: "/json")],
            rounds: 2, warmup: 0, seconds: 1, wrk: try wrk(), logDirectory: directory)
        var progress: [String] = []
        let (samples, summaries) = try await HTTPBenchmark(options: options).run(progress: { progress.append($0) })

        #expect(samples.count == 2 * 2 * 2)
        // Interleaved: within a configuration, the servers take turns in order, round by round.
        #expect(samples.prefix(4).map(\.server) == ["python-a", "python b", "python-a", "python b"])
        #expect(samples.prefix(4).map(\.round) == [1, 1, 2, 2])
        for sample in samples {
            #expect(sample.requests > 0 && sample.requestsPerSecond > 0, "\(sample)")
            #expect(sample.serverCPUSeconds > 0, "the server's CPU clock did not move: \(sample)")
            #expect(sample.clientCPUSeconds > 0 && sample.clientCorePercent > 0, "wrk's CPU time was not read: \(sample)")
            #expect(sample.seconds > 0.9 && sample.seconds < 5, "\(sample)")
        }
        for sample in samples where sample.depth == 1 {
            #expect(sample.p50Microseconds > 0 && sample.p99Microseconds >= sample.p50Microseconds, "\(sample)")
        }
        #expect(summaries.map(\.route) == ["/plaintext", "/plaintext", "/json", "/json"])
        for summary in summaries {
            #expect(summary.clientBound == (summary.clientCorePercent > ServerComparison.clientBoundPercent), "\(summary)")
            let reference = try #require(summaries.first { $0.server == "python-a" && $0.route == summary.route })
            let expected: BenchRatio =
                summary.clientBound ? .clientBound
                : reference.clientBound ? .referenceClientBound
                : .value(summary.requestsPerSecond / reference.requestsPerSecond)
            #expect(summary.throughputRatio == expected, "\(summary)")
        }
        #expect(progress.contains { $0.hasPrefix("[8/8] 2 conns ×4 /json, round 2, python b: ") })
        #expect(!progress.contains { $0.contains("warning") }, "\(progress)")
        let log = try String(contentsOfFile: directory + "/http-server-python_b.log", encoding: .utf8)
        #expect(log.contains("listening on 127.0.0.1:"))
    }

    /// The default servers: the built `iopool http-server` on both pools, as `bench http` starts
    /// them, through the probe and wrk with and without pipelining, with no error counted.
    @Test func ourHTTPServerOnBothPoolsPassesTheProbeAndIsMeasured() async throws {
        let directory = try temporaryDirectory()
        let servers = try BenchCommand.HTTP.parse([]).serverList(executable: try iopoolExecutable())
        #expect(servers.map(\.name) == ["IOThreadPool", "WorkStealingPool"])
        let options = HTTPBenchmark.Options(
            servers: servers,
            configurations: [.init(connections: 4, depth: 1, route: "/plaintext"), .init(connections: 4, depth: 16, route: "/json")],
            rounds: 1, warmup: 0, seconds: 1, wrk: try wrk(), logDirectory: directory)
        let (samples, summaries) = try await HTTPBenchmark(options: options).run(progress: { _ in })
        #expect(samples.count == 2 * 2)
        for sample in samples {
            #expect(sample.requests > 100 && sample.serverCPUSeconds > 0, "\(sample)")
        }
        #expect(summaries.map(\.server) == ["IOThreadPool", "WorkStealingPool", "IOThreadPool", "WorkStealingPool"])
        let log = try String(contentsOfFile: directory + "/http-server-WorkStealingPool.log", encoding: .utf8)
        #expect(log.contains("http-server: stopped"), "stopped by SIGTERM, gracefully: \(log)")
    }

    @Test func responsesWithAnErrorStatusFailTheRoundAndSayHowMany() async throws {
        let directory = try temporaryDirectory()
        // The probe's request passes; from the 21st request on, every answer is a 500.
        let options = HTTPBenchmark.Options(
            servers: [.init(name: "fails", command: pythonHTTPServer(failsAfter: 20))],
            configurations: [.init(connections: 2, depth: 1, route: "/plaintext")], rounds: 1, warmup: 0, seconds: 1,
            wrk: try wrk(), logDirectory: directory)
        await #expect {
            _ = try await HTTPBenchmark(options: options).run(progress: { _ in })
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("fails (2 conns /plaintext): wrk counted ") && text.contains("responses with status 400 or more")
                && text.contains("the server is still running")
        }
    }

    @Test func aWrongBodyFailsBeforeItIsMeasured() async throws {
        let directory = try temporaryDirectory()
        let options = HTTPBenchmark.Options(
            servers: [.init(name: "wrong", command: pythonHTTPServer(wrongBody: true))],
            configurations: [.init(connections: 1, depth: 1, route: "/plaintext")], rounds: 1, warmup: 0, seconds: 1,
            wrk: try wrk(), logDirectory: directory)
        await #expect {
            _ = try await HTTPBenchmark(options: options).run(progress: { _ in })
        } throws: { error in
            "\(error)".hasPrefix("wrong (1 conn /plaintext): GET /plaintext answered the body 'Hello, Wrong!', not 'Hello, World!'")
        }
    }

    @Test func aMissingRouteFailsWithItsStatus() async throws {
        let directory = try temporaryDirectory()
        // nginx-less stand-in: Python's own http.server answers 404 for /json (no such file).
        let options = HTTPBenchmark.Options(
            servers: [.init(name: "files", command: "python3 -m http.server --bind 127.0.0.1 --directory '\(directory)' {port}")],
            configurations: [.init(connections: 1, depth: 1, route: "/json")], rounds: 1, warmup: 0, seconds: 1,
            wrk: try wrk(), logDirectory: directory)
        await #expect {
            _ = try await HTTPBenchmark(options: options).run(progress: { _ in })
        } throws: { error in
            "\(error)".hasPrefix("files (1 conn /json): GET /json answered status 404, not 200")
        }
    }

    @Test func processTreeCPUCountsTheChildrenOfAWrapper() async throws {
        // A shell that does not exec: the work is its child's, and the tree's clock must see it.
        let directory = try temporaryDirectory()
        let child = try iopool.ChildProcess(
            arguments: ["/bin/sh", "-c", "python3 -c 'import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(30)' ; true"],
            environment: iopool.ChildProcess.inheritedEnvironment(), cpus: nil, stdoutPath: directory + "/out", stderrPath: directory + "/out")
        defer { child.killAndReapNow() }
        var tree: [pid_t] = []
        var nanoseconds: Int64 = 0
        // Bounded: 10 s for the child to burn its 0.3 s of CPU.
        for _ in 0..<200 where nanoseconds < 250_000_000 {
            try await Task.sleep(for: .milliseconds(50))
            tree = ProcessTreeCPU.processTree(root: child.pid)
            nanoseconds = ProcessTreeCPU.nanoseconds(root: child.pid)
        }
        #expect(tree.count == 2 && tree.first == child.pid, "\(tree)")
        #expect(nanoseconds >= 250_000_000, "\(nanoseconds) ns")
        #expect(ProcessTreeCPU.nanoseconds(root: child.pid) > 0)
    }

    /// Synthetic rows: the shared comparison (as `bench echo`'s) applied to HTTP summaries.
    @Test func aClientBoundRowClaimsNoRatio() {
        func sample(_ server: String, rate: Double, cpu: Double, wrkPercent: Double) -> HTTPBenchmark.Sample {
            .init(
                server: server, connections: 64, depth: 1, route: "/plaintext", round: 1, requests: UInt64(rate), seconds: 1,
                requestsPerSecond: rate, p50Microseconds: 100, p99Microseconds: 200, serverCPUSeconds: cpu * rate / 1e6,
                serverCPUMicrosecondsPerRequest: cpu, clientCPUSeconds: wrkPercent / 100, clientCorePercent: wrkPercent)
        }
        let summaries = HTTPBenchmark.summarize(
            [sample("io", rate: 100_000, cpu: 8, wrkPercent: 80), sample("hb", rate: 25_000, cpu: 40, wrkPercent: 30),
             sample("nginx", rate: 140_000, cpu: 6, wrkPercent: 97)],
            servers: ["io", "hb", "nginx"], configurations: [.init(connections: 64, depth: 1, route: "/plaintext")])
        #expect(summaries.map(\.throughputRatio) == [.value(1), .value(0.25), .clientBound])
        #expect(summaries.map(\.cpuPerRequestRatio) == [.value(1), .value(5), .clientBound])
    }

    @Test func wrksScriptLineIsDecodedWithMissingPercentilesAsNil() throws {
        let line = #"{"requests":1200,"duration_us":1000000,"p50_us":1540.0,"p99_us":null,"connect_errors":0,"read_errors":2,"write_errors":0,"status_errors":3,"timeouts":0}"#
        let result = try JSONDecoder().decode(WrkClient.Result.self, from: Data(line.utf8))
        #expect(result.requests == 1200 && result.p50Microseconds == 1540 && result.p99Microseconds == nil)
        #expect(result.errorSummary == "3 responses with status 400 or more, 2 read errors")
    }

    private func wrk() throws -> String {
        try #require(WrkClient.find("wrk"), "wrk is not installed (Debian: apt-get install wrk)")
    }

    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "iopool-bench-http-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// `iopool bench http`'s options: the configurations they make, the servers they name, and what
/// they refuse, with the message a user sees.
@Suite struct HTTPBenchOptionTests {
    @Test func configurationsAreEveryPathDepthAndConnectionCount() throws {
        let command = try BenchCommand.HTTP.parse(["--connections", "1,64", "--depths", "1,16", "--paths", "/plaintext,/json"])
        let labels = try command.configurationList().map(\.label)
        #expect(
            labels == [
                "1 conn /plaintext", "64 conns /plaintext", "1 conn ×16 /plaintext", "64 conns ×16 /plaintext",
                "1 conn /json", "64 conns /json", "1 conn ×16 /json", "64 conns ×16 /json",
            ])
    }

    @Test func serversAreOursThenThePeersInTheirOrder() throws {
        let hummingbird = "'/opt/hb/hummingbird-bench-server' --server nio --host 127.0.0.1 --port {port} --threads {threads}"
        let command = try BenchCommand.HTTP.parse([
            "--peer", "nginx=bash Benchmarks/http/nginx-peer.sh {port} {threads}", "--peer", "hummingbird=" + hummingbird,
        ])
        let servers = try command.serverList(executable: "/x/iopool")
        #expect(servers.map(\.name) == ["IOThreadPool", "WorkStealingPool", "nginx", "hummingbird"])
        #expect(servers[0].command == "'/x/iopool' http-server --host 127.0.0.1 --port {port} --threads {threads} --pool io --grace-period 1")
        #expect(servers[1].command == "'/x/iopool' http-server --host 127.0.0.1 --port {port} --threads {threads} --pool stealing --grace-period 1")
        #expect(servers[2].command == "bash Benchmarks/http/nginx-peer.sh {port} {threads}")
        #expect(servers[3].command == hummingbird)

        let peersOnly = try BenchCommand.HTTP.parse(["--servers", "", "--peer", "a=x {port}"])
        #expect(try peersOnly.serverList(executable: "iopool").map(\.name) == ["a"])
        let stealingFirst = try BenchCommand.HTTP.parse(["--servers", "stealing,io"])
        #expect(try stealingFirst.serverList(executable: "iopool").map(\.name) == ["WorkStealingPool", "IOThreadPool"])
    }

    private func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try IOPoolCommand.parseAsRoot(["bench", "http"] + arguments)
            return nil
        } catch {
            return IOPoolCommand.message(for: error)
        }
    }

    @Test(arguments: [
        (["--threads", "0"], "--threads 0: expected a whole number of at least 1"),
        (["--client-threads", "-1"], "--client-threads -1: expected a whole number of at least 1"),
        (["--rounds", "0"], "--rounds 0: expected a whole number of at least 1"),
        (["--seconds", "0"], "--seconds 0: expected a whole number from 1 to 3600"),
        (["--warmup", "-1"], "--warmup -1: expected a whole number from 0 to 3600"),
        (["--connections", "0"], "--connections '0': expected positive whole numbers separated by commas, e.g. 1,16,256"),
        (["--depths", "1,x"], "--depths '1,x': expected positive whole numbers separated by commas, e.g. 1,16,256"),
        (["--paths", "/plaintext,/nope"], "--paths: unknown path '/nope' (known: /plaintext, /json)"),
        (["--client-threads", "4", "--connections", "2,64"], "--client-threads 4: wrk needs at least as many connections as threads (--connections has 2)"),
        (["--servers", "io,global"], "--servers: unknown server 'global' (known: io, stealing)"),
        (["--no-hummingbird"], "Unknown option '--no-hummingbird'"),
        (["--peer", "=x"], "--peer '=x': expected NAME=COMMAND, e.g. nginx='bash Benchmarks/http/nginx-peer.sh {port} {threads}'"),
        (["--servers", ""], "no servers to measure: give --servers or --peer"),
        (["--peer", "IOThreadPool=x"], "two servers have the same name"),
    ])
    func aBadOptionIsRefusedSayingWhy(arguments: [String], message: String) {
        #expect(refusal(arguments) == message)
    }

    @Test func wholeSecondsOnlyForWrk() {
        #expect(refusal(["--seconds", "0.5"]) != nil)
        #expect(refusal(["--seconds", "1", "--warmup", "0", "--connections", "1", "--depths", "1", "--rounds", "1"]) == nil)
    }
}
