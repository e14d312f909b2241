import Foundation
import IOPool
import Testing

@testable import iopool

/// A small echo server in Python (selectors, one thread), as a stand-in for any `--peer` command:
/// it takes its port from `{port}`, as a peer must. With `diesAfter` S it exits S seconds after the
/// first bytes it echoes (a server that dies mid-run); with `corrupts` it flips a bit of the
/// tenth chunk it echoes (a server that breaks the echo contract).
private func pythonEchoServer(diesAfter seconds: Double? = nil, corrupts: Bool = false) -> String {
    """
    python3 -c 'import os, selectors, socket, sys, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512); s.setblocking(False)
    sel = selectors.DefaultSelector(); sel.register(s, selectors.EVENT_READ)
    corrupts = sys.argv[2] == "corrupts"
    dies_after = float(sys.argv[3]) if len(sys.argv) > 3 else None
    chunks = 0
    first_data = None
    print("listening on 127.0.0.1:" + sys.argv[1], flush=True)
    print("pid " + str(os.getpid()), flush=True)
    while True:
        if first_data is not None and dies_after is not None and time.monotonic() - first_data > dies_after:
            os._exit(0)
        for key, _ in sel.select(timeout=0.05):
            if key.fileobj is s:
                c, _ = s.accept(); c.setblocking(False); sel.register(c, selectors.EVENT_READ)
            else:
                try:
                    data = key.fileobj.recv(65536)
                except ConnectionError:
                    data = b""
                if data:
                    first_data = first_data or time.monotonic()
                    chunks += 1
                    if corrupts and chunks == 10: data = bytes([data[0] ^ 1]) + data[1:]
                    key.fileobj.setblocking(True); key.fileobj.sendall(data); key.fileobj.setblocking(False)
                else:
                    sel.unregister(key.fileobj); key.fileobj.close()
    ' {port} \(corrupts ? "corrupts" : "echoes") \(seconds.map { String($0) } ?? "")
    """
}

@Suite(.timeLimit(.minutes(2)))
struct BenchTests {
    @Test func echoBenchmarkMeasuresEveryServerInEveryRoundAndComparesToTheFirst() async throws {
        let directory = try temporaryDirectory()
        let options = EchoBenchmark.Options(
            servers: [.init(name: "python-a", command: pythonEchoServer()), .init(name: "python b", command: pythonEchoServer())],
            configurations: [.init(connections: 1, size: 64, depth: 1), .init(connections: 4, size: 100, depth: 2)],
            rounds: 2, warmup: 0.05, seconds: 0.2, clientBinary: try await loadClient(into: directory), logDirectory: directory)
        var progress: [String] = []
        let (samples, summaries) = try await EchoBenchmark(options: options).run(progress: { progress.append($0) })

        #expect(samples.count == 2 * 2 * 2)
        // Interleaved: within a configuration and round, the servers take turns in order.
        #expect(samples.prefix(4).map(\.server) == ["python-a", "python b", "python-a", "python b"])
        #expect(samples.prefix(4).map(\.round) == [1, 1, 2, 2])
        for sample in samples {
            #expect(sample.messages > 0, "\(sample)")
            #expect(sample.serverCPUSeconds > 0, "the server's CPU clock did not move: \(sample)")
            #expect(sample.p50Microseconds > 0 && sample.p99Microseconds >= sample.p50Microseconds)
            #expect(sample.clientCPUSeconds > 0 && sample.clientCorePercent > 0, "the client's CPU clock did not move: \(sample)")
        }
        #expect(summaries.count == 4)
        // Whether a row is client-bound depends on the machine (a Python server on a fast core can
        // keep the C client over 90% busy at 4 connections), so this checks that each row's ratios
        // follow its classification; `aClientBoundRowClaimsNoRatio` checks the
        // classification itself on fixed samples.
        for summary in summaries {
            #expect(summary.clientBound == (summary.clientCorePercent > EchoBenchmark.clientBoundPercent), "\(summary)")
            let reference = try #require(summaries.first { $0.server == "python-a" && $0.connections == summary.connections })
            func expected(_ value: Double, _ referenceValue: Double) -> EchoBenchmark.Ratio {
                summary.clientBound ? .clientBound : reference.clientBound ? .referenceClientBound : .value(value / referenceValue)
            }
            #expect(summary.throughputRatio == expected(summary.messagesPerSecond, reference.messagesPerSecond), "\(summary)")
            #expect(
                summary.cpuPerMessageRatio == expected(summary.serverCPUMicrosecondsPerMessage, reference.serverCPUMicrosecondsPerMessage),
                "\(summary)")
        }
        #expect(progress.contains { $0.hasPrefix("[8/8]") })
        // Each server's output went to its own log, named after it.
        let log = try String(contentsOfFile: directory + "/echo-server-python_b.log", encoding: .utf8)
        #expect(log.contains("listening on 127.0.0.1:"))
    }

    @Test func aServerThatExitsAtOnceFailsWithItsOutput() async throws {
        let directory = try temporaryDirectory()
        let options = EchoBenchmark.Options(
            servers: [.init(name: "broken", command: "sh -c 'echo cannot bind {port}: no reason >&2; exit 3'")],
            configurations: [.init(connections: 1, size: 64, depth: 1)], rounds: 1, warmup: 0, seconds: 0.1,
            clientBinary: try await loadClient(into: directory), logDirectory: directory)
        await #expect {
            _ = try await EchoBenchmark(options: options).run(progress: { _ in })
        } throws: { error in
            let text = "\(error)"
            return text.contains("broken: the server exited (exit status 3)") && text.contains("cannot bind")
        }
    }

    @Test func aServerThatDiesMidRunFailsTheRoundAndSaysSo() async throws {
        let directory = try temporaryDirectory()
        // Accepts (so it counts as started), echoes for 0.3 s, then exits.
        let options = EchoBenchmark.Options(
            servers: [.init(name: "dies", command: pythonEchoServer(diesAfter: 0.3))], configurations: [.init(connections: 2, size: 64, depth: 1)],
            rounds: 3, warmup: 0.1, seconds: 0.5, clientBinary: try await loadClient(into: directory), logDirectory: directory)
        await #expect {
            _ = try await EchoBenchmark(options: options).run(progress: { _ in })
        } throws: { error in
            "\(error)".hasPrefix("dies (2 conns): ")
        }
    }

    @Test func aServerThatCorruptsAnEchoFailsTheRunAndSaysSo() async throws {
        let directory = try temporaryDirectory()
        let options = EchoBenchmark.Options(
            servers: [.init(name: "corrupts", command: pythonEchoServer(corrupts: true))],
            configurations: [.init(connections: 2, size: 64, depth: 1)], rounds: 1, warmup: 0.1, seconds: 0.3,
            clientBinary: try await loadClient(into: directory), logDirectory: directory)
        await #expect {
            _ = try await EchoBenchmark(options: options).run(progress: { _ in })
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("corrupts (2 conns): ") && text.contains("broke the echo contract")
                && text.contains("mismatch: echoed bytes differ")
        }
        // The run failed with the server still up: it must be killed and collected, not left a
        // zombie (a zombie child kept Swift Testing's exit-test monitor spinning, and the test
        // process from exiting).
        let log = try String(contentsOfFile: directory + "/echo-server-corrupts.log", encoding: .utf8)
        let pid = try #require(log.split(separator: "\n").first { $0.hasPrefix("pid ") }.flatMap { Int32($0.dropFirst(4)) })
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(pid)"), "the server (pid \(pid)) was killed but not collected: a zombie")
    }

    /// Synthetic rounds: what is over 90% client-bound gets no ratio, and when the first server's
    /// row is, no row of that configuration does.
    @Test func aClientBoundRowClaimsNoRatio() throws {
        func sample(_ server: String, connections: Int, cpuPerMessage: Double, clientPercent: Double) -> EchoBenchmark.Sample {
            .init(
                server: server, connections: connections, size: 64, depth: 1, round: 1, messages: 1000, seconds: 1,
                messagesPerSecond: 1000, p50Microseconds: 10, p99Microseconds: 20, serverCPUSeconds: cpuPerMessage * 1000 / 1e6,
                serverCPUMicrosecondsPerMessage: cpuPerMessage, clientCPUSeconds: clientPercent / 100,
                clientCorePercent: clientPercent)
        }
        let samples = [
            sample("c", connections: 16, cpuPerMessage: 4, clientPercent: 60),
            sample("io", connections: 16, cpuPerMessage: 6, clientPercent: 50),
            sample("fast", connections: 16, cpuPerMessage: 3, clientPercent: 95),
            sample("c", connections: 256, cpuPerMessage: 4, clientPercent: 91),
            sample("io", connections: 256, cpuPerMessage: 6, clientPercent: 50),
        ]
        let summaries = EchoBenchmark.summarize(
            samples, servers: ["c", "io", "fast"],
            configurations: [.init(connections: 16, size: 64, depth: 1), .init(connections: 256, size: 64, depth: 1)])
        #expect(summaries.map(\.clientBound) == [false, false, true, true, false])
        #expect(summaries.map(\.cpuPerMessageRatio) == [.value(1), .value(1.5), .clientBound, .clientBound, .referenceClientBound])
        let json = String(decoding: try JSONEncoder().encode(summaries), as: UTF8.self)
        #expect(json.contains(#""cpuPerMessageRatio":1.5"#) && json.contains(#""cpuPerMessageRatio":"client-bound""#))
        #expect(try JSONDecoder().decode([EchoBenchmark.Summary].self, from: Data(json.utf8)).map(\.cpuPerMessageRatio) == summaries.map(\.cpuPerMessageRatio))
    }

    @Test func cpusAreSplitBetweenServerAndClient() {
        let allowed = CPUAffinity.allowed
        let (server, client) = CPUAffinity.split(server: 1, client: 1)
        if allowed.count >= 2 {
            #expect(server == [allowed[0]] && client == [allowed[1]])
        } else {
            #expect(server == nil && client == nil)
        }
        #expect(CPUAffinity.describe([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8")
    }

    @Test func barChartDrawsABarPerValueAndEscapesNames() {
        let chart = BarChart(
            title: "t <&>", subtitle: "s",
            panels: [
                .init(title: "linear", groups: ["1 conn", "16 conns"], series: ["a", "b\"c"], values: [[1, 2], [3, .nan]]),
                .init(title: "log", groups: ["x"], series: ["a", "b"], values: [[10, 100_000]], logarithmic: true),
            ])
        let svg = chart.svg()
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("t &lt;&amp;&gt;") && svg.contains("b&quot;c") && !svg.contains("b\"c"))
        // One <rect ...><title> per finite value: 3 in the first panel (NaN draws none), 2 in the second.
        #expect(svg.components(separatedBy: "<title>").count - 1 == 5)
        #expect(svg.contains(">100k<"))  // the log axis reaches the largest value's decade
    }

    @Test func barChartFadesAndStarsMarkedBars() {
        let chart = BarChart(
            title: "t", subtitle: "s",
            panels: [.init(title: "p", groups: ["g"], series: ["a", "b"], values: [[10, 20]], marked: [[false, true]])])
        let svg = chart.svg()
        #expect(svg.components(separatedBy: "fill-opacity").count - 1 == 1)
        #expect(svg.contains(">20*<") && svg.contains(">10<"))
    }

    @Test func tableColumnsArePaddedToTheirWidthAndTheLastIsNot() {
        var table = TextTable(heading: ["h"], columns: [("a", 4), ("bb", 3), ("last", 0)], notes: ["n"])
        table.append(["x", "wide", "z"])
        #expect(table.titleLine == "a   bb last")
        // A cell as wide as its column or wider keeps one space before the next.
        #expect(table.line(table.rows[0]) == "x   wide z")
    }

    @Test func cpuSplitIsDescribedAsTasksetPrintsIt() {
        #expect(CPUAffinity.describe([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8")
        #expect(CPUAffinity.describe(server: [0], client: [1, 2], clientName: "wrk") == "server on CPU 0, wrk on CPU 1-2")
        #expect(CPUAffinity.describe(server: nil, client: nil, clientName: "wrk") == "not pinned")
    }

    @Test func medianOfOddEvenAndNaN() {
        #expect(median([3, 1, 2]) == 2)
        #expect(median([4, 1, 3, 2]) == 2.5)
        #expect(median([.nan, 5]) == 5)
        #expect(median([]).isNaN)
    }

    /// The C load client, compiled into `directory` (the tests run from the package root).
    private func loadClient(into directory: String) async throws -> String {
        try await EchoBaselineProgram.loadClient.compile(into: directory)
    }

    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "iopool-bench-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
