import ArgumentParser
import Foundation
import IOPool

/// `iopool bench scheduler`: tokio's runtime benchmarks (`SchedulerBenchmark`) on every runtime
/// (`BenchRuntime`) and any peer process, interleaved per iteration, and the report.
extension BenchCommand {
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
            for runtime in runtimes { await runtime.shutdownGracefully() }

            let runtimeColumns: [(title: String, width: Int)] = names.map { ($0, 18) }
            let floorColumns: [(title: String, width: Int)] = Self.floorRatios.map { ($0.label, 18) }
            let peerColumns: [(title: String, width: Int)] = peers.map { ("\($0.name) ÷ WSP spawn", 18) }
            var table = TextTable(
                heading: [heading],
                columns: [("benchmark", 24)] + runtimeColumns + floorColumns + peerColumns + [("global ÷ stealing (spawn, Task(pref:))", 0)],
                notes: ["(÷ floor: time ÷ the floor's with \(threads) thread(s); 1.0 is as fast as the thinnest executor)"])
            for row in rows {
                let global = row.median(.global)
                let runtimeCells: [String] = names.map { format1(row.medianMicroseconds[$0] ?? .nan) }
                let floorCells: [String] = Self.floorRatios.map { formatRatio(row.median($0.kind) / row.median(.floor)) }
                let peerCells: [String] = peers.map { formatRatio((row.medianMicroseconds[$0.name] ?? .nan) / row.median(.stealing)) }
                let globalCell = "\(formatRatio(global / row.median(.stealing))), \(formatRatio(global / row.median(.stealingPreference)))"
                table.append([row.benchmark] + runtimeCells + floorCells + peerCells + [globalCell])
            }
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
            try BenchReport(
                name: "scheduler", table: table, chart: chart,
                results: SchedulerRecord(threads: threads, iterations: iterations, rows: rows)
            ).publish(into: output.output)
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
