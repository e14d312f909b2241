import ArgumentParser
import Foundation
import Glibc
import IOPool

/// `iopool bench`: benchmarks run side by side in one invocation. With no subcommand it runs all
/// three with their defaults (about 3 minutes); each writes a table on stdout, progress on stderr,
/// and a JSON file of raw results and an SVG chart into `--output`.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the pools against each other, against Swift's global executor, and against other servers.",
        subcommands: [All.self, Echo.self, HTTP.self, Scheduler.self, Blocking.self, Timers.self, UDP.self],
        defaultSubcommand: All.self)

    struct OutputOptions: ParsableArguments {
        @Option(help: "Directory for the JSON results, the SVG charts and the servers' logs.")
        var output = "bench-results"
    }

    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "all",
            abstract: "echo, scheduler and blocking, each with its defaults (the README's main command).")

        @OptionGroup var output: OutputOptions

        func run() async throws {
            var echo = try Echo.parse([])
            echo.output = output
            try await echo.run()
            printLine("")
            var scheduler = try Scheduler.parse([])
            scheduler.output = output
            try await scheduler.run()
            printLine("")
            var blocking = try Blocking.parse([])
            blocking.output = output
            try await blocking.run()
        }
    }

    struct Echo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Echo servers as separate processes, driven in turn by the verifying C load client.",
            discussion: """
                Servers: the C epoll baseline (first, so the ratios are to it; leave it out with \
                --no-c-baseline), our echo-server on IOThreadPool (io), on WorkStealingPool (stealing) and on \
                Swift's global executor with the same net types (global), then every --peer. Each runs as its \
                own process on a free loopback port; the servers take the first --threads CPUs and the load \
                client the next --client-threads ones. The load client is Benchmarks/echo-baseline/\
                pingpong_client.c, compiled on the spot (as is the C server): the bench fails if there is no \
                C compiler, since a client that costs more per message than a server would measure itself. \
                Rounds interleave the servers (A B C A B C ...); the table shows medians over the rounds and \
                ratios to the first server. Server CPU per message is the server process's CPU clock over the \
                measured window divided by the messages echoed; client CPU % is how busy the client's \
                busiest core was over the same window. Where that is over 90%, the client may have set the \
                pace: the configuration is marked client-bound and no ratio is claimed for it.
                """)

        @Option(help: "Built-in servers, in order: io, stealing, global (comma-separated).")
        var servers = "io,stealing,global"
        @Option(
            name: .customLong("peer"),
            help: ArgumentHelp(
                "Another server as NAME=COMMAND (repeatable); {port} and {threads} are substituted.",
                valueName: "name=command"))
        var peers: [String] = []
        @Flag(help: "Leave out the C epoll baseline server (the load client is C regardless).")
        var noCBaseline = false
        // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
        @Option(parsing: .unconditional, help: "Server threads.") var threads = 1
        @Option(parsing: .unconditional, help: "Load client threads.") var clientThreads = 1
        @Option(parsing: .unconditional, help: "Connection counts (comma-separated).") var connections = "1,16,256"
        @Option(parsing: .unconditional, help: "Message sizes in bytes (comma-separated).") var sizes = "64"
        @Option(parsing: .unconditional, help: "Messages in flight per connection (1: ping-pong).") var depth = 1
        @Option(parsing: .unconditional, help: "Rounds per server and configuration.") var rounds = 3
        @Option(parsing: .unconditional, help: "Warm-up seconds before each measured window.") var warmup = 0.5
        @Option(parsing: .unconditional, help: "Seconds per measured window.") var seconds = 2.0
        @Flag(help: "Do not pin the server and the client to separate CPUs.") var noPin = false
        @OptionGroup var output: OutputOptions

        func validate() throws {
            try OptionRules.checkCount(threads, "--threads")
            try OptionRules.checkCount(clientThreads, "--client-threads")
            try OptionRules.checkCount(depth, "--depth")
            try OptionRules.checkCount(rounds, "--rounds")
            try OptionRules.checkSeconds(warmup, "--warmup", allowingZero: true)
            try OptionRules.checkSeconds(seconds, "--seconds", allowingZero: false)
            _ = try parseList(connections, "--connections")
            _ = try parseList(sizes, "--sizes")
            _ = try serverList()
        }

        func run() async throws {
            try makeDirectory(output.output)
            var servers = try serverList()
            let clientBinary: String
            do {
                clientBinary = try await EchoBaselineProgram.loadClient.compile(into: output.output)
            } catch {
                // No fallback to a Swift client: it costs about twice the C client per message, so
                // it would measure itself rather than the servers.
                throw BenchError("bench echo: \(error); the echo benchmark drives every server with this C load client and does not run without it")
            }
            if !noCBaseline {
                do {
                    let server = try await EchoBaselineProgram.server.compile(into: output.output)
                    servers.insert(.init(name: Self.cBaselineName, command: "'\(server)' {port}"), at: 0)
                } catch {
                    throw BenchError("bench echo: \(error) (--no-c-baseline leaves the C baseline server out)")
                }
            }
            let configurations = try parseList(sizes, "--sizes").flatMap { size in
                try parseList(connections, "--connections").map {
                    EchoBenchmark.Configuration(connections: $0, size: size, depth: depth)
                }
            }
            let (serverCPUs, clientCPUs) = noPin ? (nil, nil) : CPUAffinity.split(server: threads, client: clientThreads)
            let options = EchoBenchmark.Options(
                servers: servers, configurations: configurations, rounds: rounds, warmup: warmup, seconds: seconds,
                serverThreads: threads, clientThreads: clientThreads, serverCPUs: serverCPUs, clientCPUs: clientCPUs,
                clientBinary: clientBinary, logDirectory: output.output)
            let pinning = serverCPUs.map { "server on CPU \(CPUAffinity.describe($0)), client on CPU \(CPUAffinity.describe(clientCPUs!))" } ?? "not pinned"
            let heading =
                "echo: \(sizes)-byte messages, depth \(depth), \(threads) server thread(s), \(clientThreads) C client thread(s), "
                + "\(pinning); medians of \(rounds) interleaved rounds of \(format1(seconds)) s"
            printError("bench echo: \(servers.count) servers × \(configurations.count) configurations × \(rounds) rounds, about \(Int(Double(servers.count * configurations.count * rounds) * (warmup + seconds + 0.2))) s")
            let (samples, summaries) = try await EchoBenchmark(options: options).run(progress: { printError("bench echo: " + $0) })

            let report = ComparisonReport(
                title: "iopool bench echo", heading: heading, servers: servers.map(\.name),
                groups: configurations.map { configuration in
                    .init(
                        label: configuration.label + ", \(configuration.size) B",
                        chartLabel: configuration.label + (configurations.allSatisfy { $0.size == 64 } ? "" : ", \(configuration.size) B"),
                        rows: summaries.filter {
                            $0.connections == configuration.connections && $0.size == configuration.size && $0.depth == configuration.depth
                        })
                },
                operation: ("msg", "message"), rateHeader: "msgs/s", latencyKind: "round-trip", client: "the load client")
            report.printTable()
            let chart = report.chart()
            try BenchRecord.write(
                name: "echo", into: output.output, chart: chart,
                record: EchoRecord(
                    options: .init(
                        servers: servers, threads: threads, clientThreads: clientThreads, depth: depth, rounds: rounds,
                        warmupSeconds: warmup, seconds: seconds, serverCPUs: serverCPUs, clientCPUs: clientCPUs),
                    summaries: summaries, samples: samples))
        }

        private func serverList() throws -> [EchoBenchmark.Server] {
            let executable = try currentExecutable()
            var list: [EchoBenchmark.Server] = []
            for name in servers.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let pool = EchoServer.Pool(rawValue: name) else {
                    throw ValidationError("--servers: unknown server '\(name)' (known: \(EchoServer.Pool.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                list.append(
                    .init(
                        name: Self.displayName(pool),
                        command: "'\(executable)' echo-server --host 127.0.0.1 --port {port} --threads {threads} --pool \(pool.rawValue) --grace-period 1"))
            }
            list += try peers.map {
                try BenchServer.peer($0, example: #"nio="Benchmarks/.build/release/nio-echo-handler --port {port}""#)
            }
            try BenchServer.checkNames(list)
            return list
        }

        static let cBaselineName = "C epoll (1 thread)"

        static func displayName(_ pool: EchoServer.Pool) -> String {
            switch pool {
            case .io: "IOThreadPool"
            case .stealing: "WorkStealingPool"
            case .global: "global executor"
            case .stealingGlobal: "WSP as global"
            }
        }
    }

    struct Scheduler: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "tokio's six runtime benchmarks on IOThreadPool, WorkStealingPool, the global executor and the floor.",
            discussion: """
                Runtimes are interleaved per iteration; each cell is the median wall time of one iteration. \
                "WSP Task(pref:)" is the same WorkStealingPool driven with plain Task(executorPreference:) \
                instead of spawn: the scheduler without spawn's shutdown accounting and cancellation scope. \
                "floor" is the thinnest executor (FloorExecutor: threads running jobs from a locked array, \
                with Task(executorPreference:)) with --threads threads, "floor 1 thread" the same on one \
                thread; the "÷ floor" columns divide by the former. A --peer (e.g. Benchmarks/tokio-peer) \
                runs in its own process, once per benchmark and round, interleaved with the runtimes.
                """)

        @Option(parsing: .unconditional, help: "Pool threads (default: the CPUs this process may use).")
        var threads = IOThreadPool.Configuration.defaultThreadCount
        @Option(parsing: .unconditional, help: "Measured iterations per benchmark and runtime (after one warm-up).")
        var iterations = 21
        @Option(
            name: .customLong("only"),
            help: "Run only these benchmarks (repeatable): \(SchedulerBenchmark.allCases.map(\.rawValue).joined(separator: ", ")).")
        var only: [SchedulerBenchmark] = []
        @Option(
            name: .customLong("runtime"),
            help: "Run only on these runtimes (repeatable): \(BenchRuntime.Kind.allCases.map(\.name).joined(separator: ", ")).")
        var runtimeFilter: [BenchRuntime.Kind] = []
        @Option(
            name: .customLong("peer"),
            help: ArgumentHelp(
                "Another runtime as NAME=COMMAND (repeatable), run as a process once per benchmark and round: "
                    + "{benchmark} and {threads} are substituted; it runs one warm-up and one measured iteration "
                    + "and prints the measured µs as the last line of its stdout.",
                valueName: "name=command"))
        var peers: [String] = []
        @Flag(
            help: ArgumentHelp(
                "Run as a --peer of another bench scheduler: install a WorkStealingPool of --threads workers as Swift's "
                    + "global executor, run the --only benchmarks on the global runtime (a warm-up, then --iterations), "
                    + "and print each median µs on a line of its own."))
        var globalExecutorPeer = false
        @OptionGroup var output: OutputOptions

        func validate() throws {
            try OptionRules.checkCount(threads, "--threads")
            try OptionRules.checkCount(iterations, "--iterations")
            _ = try peerList()
        }

        /// `--global-executor-peer`: the global runtime, with the pool installed as the global
        /// executor (which no process can undo, hence a process of its own per round).
        private func runAsGlobalExecutorPeer() async throws {
            _ = try WorkStealingPool.unsafeInstallAsGlobalExecutor(configuration: .init(threadCount: threads, threadNamePrefix: "bench-wsg-"))
            for benchmark in only.isEmpty ? SchedulerBenchmark.allCases : only {
                var samples: [Double] = []
                for round in 0...iterations {
                    let nanoseconds = await benchmark.runOnce(on: .global, threads: threads)
                    if round > 0 { samples.append(Double(nanoseconds) / 1000) }
                }
                printLine(format1(median(samples)))
            }
        }

        /// The peers as (name, command template); names must not clash with the built-in runtimes.
        private func peerList() throws -> [(name: String, command: String)] {
            let list = try peers.map { peer -> (name: String, command: String) in
                guard let equals = peer.firstIndex(of: "="), equals != peer.startIndex, peer.index(after: equals) != peer.endIndex else {
                    throw ValidationError(
                        "--peer '\(peer)': expected NAME=COMMAND, e.g. tokio=\"Benchmarks/tokio-peer/target/release/tokio-scheduler --only {benchmark} --threads {threads} --iterations 1 --format us\"")
                }
                return (String(peer[..<equals]), String(peer[peer.index(after: equals)...]))
            }
            let names = BenchRuntime.Kind.allCases.map(\.rawValue) + list.map(\.name)
            guard Set(names).count == names.count else { throw ValidationError("--peer: two runtimes have the same name") }
            return list
        }

        /// One round of a peer: its process's last stdout line, in µs.
        private static func runPeer(_ command: String, benchmark: SchedulerBenchmark, threads: Int) throws -> Double {
            let command = command.replacingOccurrences(of: "{benchmark}", with: benchmark.rawValue)
                .replacingOccurrences(of: "{threads}", with: String(threads))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "exec " + command]
            let stdout = Pipe()
            process.standardOutput = stdout
            try process.run()
            let data = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let lastLine = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
            guard process.terminationStatus == 0, let microseconds = Double(lastLine.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--peer '\(command)': exit status \(process.terminationStatus), last line '\(lastLine)' (expected µs)")
            }
            return microseconds
        }

        /// The "÷ floor" columns: how far each runtime is from the thinnest executor.
        static let floorRatios: [(label: String, kind: BenchRuntime.Kind)] = [
            ("WSP spawn ÷ floor", .stealing), ("WSP pref ÷ floor", .stealingPreference), ("global ÷ floor", .global),
        ]

        func run() async throws {
            if globalExecutorPeer { return try await runAsGlobalExecutorPeer() }
            try makeDirectory(output.output)
            let kinds = runtimeFilter.isEmpty ? BenchRuntime.Kind.allCases : BenchRuntime.Kind.allCases.filter(runtimeFilter.contains)
            let runtimes = try kinds.map { try BenchRuntime.make($0, threads: threads) }
            let peers = try peerList()
            let names = kinds.map(\.rawValue) + peers.map(\.name)
            let heading = "scheduler: median µs per iteration, \(iterations) iterations, \(threads) threads"
            var rows: [SchedulerRow] = []
            for benchmark in only.isEmpty ? SchedulerBenchmark.allCases : only {
                printError("bench scheduler: \(benchmark.rawValue)")
                var samples = Array(repeating: [Double](), count: names.count)  // µs
                for round in 0...iterations {
                    for (index, runtime) in runtimes.enumerated() {
                        let nanoseconds = await benchmark.runOnce(on: runtime, threads: threads)
                        if round > 0 { samples[index].append(Double(nanoseconds) / 1000) }  // round 0 warms up
                    }
                    // A peer warms up in its own process, every round.
                    for (index, peer) in peers.enumerated() where round > 0 {
                        samples[runtimes.count + index].append(try Self.runPeer(peer.command, benchmark: benchmark, threads: threads))
                    }
                }
                rows.append(
                    SchedulerRow(
                        benchmark: benchmark.rawValue,
                        medianMicroseconds: Dictionary(uniqueKeysWithValues: zip(names, samples.map(median))),
                        samplesMicroseconds: Dictionary(uniqueKeysWithValues: zip(names, samples))))
            }
            for runtime in runtimes { await runtime.shutdown() }

            printLine(heading)
            printLine(
                pad("benchmark", 24) + names.map { pad($0, 18) }.joined()
                    + Self.floorRatios.map { pad($0.label, 18) }.joined()
                    + peers.map { pad("\($0.name) ÷ WSP spawn", 18) }.joined() + "global ÷ stealing (spawn, Task(pref:))")
            for row in rows {
                let global = row.median(.global)
                printLine(
                    pad(row.benchmark, 24) + names.map { pad(format1(row.medianMicroseconds[$0] ?? .nan), 18) }.joined()
                        + Self.floorRatios.map { pad(formatRatio(row.median($0.kind) / row.median(.floor)), 18) }.joined()
                        + peers.map { pad(formatRatio((row.medianMicroseconds[$0.name] ?? .nan) / row.median(.stealing)), 18) }.joined()
                        + "\(formatRatio(global / row.median(.stealing))), \(formatRatio(global / row.median(.stealingPreference)))")
            }
            printLine("(÷ floor: time ÷ the floor's with \(threads) thread(s); 1.0 is as fast as the thinnest executor)")
            let groups = rows.map(\.benchmark)
            let chart = BarChart(
                title: "iopool bench scheduler", subtitle: heading,
                panels: [
                    .init(
                        title: "speed relative to Swift's global executor (global time ÷ runtime time; higher is better)",
                        groups: groups, series: names,
                        values: rows.map { row in names.map { row.median(.global) / (row.medianMicroseconds[$0] ?? .nan) } },
                        label: { format2($0) + "×" }),
                    .init(
                        title: "median µs per iteration (log scale; lower is better)", groups: groups, series: names,
                        values: rows.map { row in names.map { row.medianMicroseconds[$0] ?? .nan } }, logarithmic: true),
                ])
            try BenchRecord.write(
                name: "scheduler", into: output.output, chart: chart,
                record: SchedulerRecord(threads: threads, iterations: iterations, rows: rows))
        }
    }

    struct Blocking: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Short-task latency while K tasks block: WorkStealingPool's blocking { } vs blocking on the global executor.")

        @Option(parsing: .unconditional, help: "Pool threads (default: the CPUs this process may use).")
        var threads = IOThreadPool.Configuration.defaultThreadCount
        @Option(parsing: .unconditional, help: "Seconds per configuration.")
        var seconds = 2.0
        @OptionGroup var output: OutputOptions

        func validate() throws {
            try OptionRules.checkCount(threads, "--threads")
            try OptionRules.checkSeconds(seconds, "--seconds", allowingZero: false)
        }

        func run() async throws {
            try makeDirectory(output.output)
            let heading = "blocking: short tasks every \(BlockingBenchmark.arrivalIntervalMicroseconds) µs while K tasks block 50 ms at a time; \(threads) threads"
            let counts = [0, threads, 2 * threads, 4 * threads]
            let kinds = [BenchRuntime.Kind.stealing, .global]
            var results: [BlockingBenchmark.Result] = []
            for blockers in counts {
                for kind in kinds {
                    printError("bench blocking: K = \(blockers), \(kind.rawValue)")
                    results.append(try await BlockingBenchmark.run(kind: kind, threads: threads, blockers: blockers, seconds: seconds))
                }
            }
            printLine(heading)
            printLine(pad("K", 6) + pad("runtime", 20) + pad("short tasks", 14) + pad("p50 µs", 12) + pad("p99 µs", 12) + "max µs")
            for result in results {
                printLine(
                    pad("\(result.blockers)", 6) + pad(result.runtime, 20) + pad("\(result.shortTasks)", 14)
                        + pad(format1(result.p50Microseconds), 12) + pad(format1(result.p99Microseconds), 12)
                        + format1(result.maxMicroseconds))
            }
            let groups = counts.map { "K = \($0)" }
            let names = kinds.map(\.rawValue)
            func values(_ value: (BlockingBenchmark.Result) -> Double) -> [[Double]] {
                counts.map { blockers in
                    kinds.map { kind in results.first { $0.blockers == blockers && $0.runtime == kind.rawValue }.map(value) ?? .nan }
                }
            }
            let chart = BarChart(
                title: "iopool bench blocking", subtitle: heading,
                panels: [
                    .init(
                        title: "short-task start delay p99 µs (log scale; lower is better)", groups: groups, series: names,
                        values: values(\.p99Microseconds), logarithmic: true),
                    .init(
                        title: "short-task start delay p50 µs (log scale; lower is better)", groups: groups, series: names,
                        values: values(\.p50Microseconds), logarithmic: true),
                ])
            try BenchRecord.write(
                name: "blocking", into: output.output, chart: chart,
                record: BlockingRecord(threads: threads, seconds: seconds, results: results))
        }
    }
}

struct SchedulerRow: Codable, Sendable {
    var benchmark: String
    var medianMicroseconds: [String: Double]
    var samplesMicroseconds: [String: [Double]]

    /// The median on `kind`; NaN if it did not run there.
    func median(_ kind: BenchRuntime.Kind) -> Double { medianMicroseconds[kind.rawValue] ?? .nan }
}

struct SchedulerRecord: Codable, Sendable {
    var threads: Int
    var iterations: Int
    var rows: [SchedulerRow]
}

struct BlockingRecord: Codable, Sendable {
    var threads: Int
    var seconds: Double
    var results: [BlockingBenchmark.Result]
}

struct EchoRecord: Codable, Sendable {
    struct Options: Codable, Sendable {
        /// The program that drove every server.
        var loadClient = EchoBaselineProgram.loadClient.source
        var servers: [EchoBenchmark.Server]
        var threads: Int
        var clientThreads: Int
        var depth: Int
        var rounds: Int
        var warmupSeconds: Double
        var seconds: Double
        var serverCPUs: [Int]?
        var clientCPUs: [Int]?
    }
    var options: Options
    var summaries: [EchoBenchmark.Summary]
    var samples: [EchoBenchmark.Sample]
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

func format1(_ value: Double) -> String {
    value.isFinite ? String(Double(Int((value * 10).rounded())) / 10) : "-"
}

func format2(_ value: Double) -> String {
    value.isFinite ? String(Double(Int((value * 100).rounded())) / 100) : "-"
}

/// A ratio as "1.23×"; "-" where a runtime of it did not run.
func formatRatio(_ value: Double) -> String {
    value.isFinite ? format2(value) + "×" : "-"
}

/// A comma-separated list of positive integers (`--connections 1,16,256`), or a ValidationError
/// that names the option.
func parseList(_ text: String, _ option: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ValidationError("\(option) '\(text)': expected positive whole numbers separated by commas, e.g. 1,16,256")
    }
    return values.map { $0! }
}


extension SchedulerBenchmark: ExpressibleByArgument {}

extension BenchRuntime.Kind: ExpressibleByArgument {
    /// The command-line name: floor, floor-1, io, stealing, stealing-preference, global.
    var name: String {
        switch self {
        case .floor: "floor"
        case .floorSingle: "floor-1"
        case .io: "io"
        case .stealing: "stealing"
        case .stealingPreference: "stealing-preference"
        case .global: "global"
        }
    }

    init?(argument: String) {
        guard let kind = Self.allCases.first(where: { $0.name == argument }) else { return nil }
        self = kind
    }
}
