import ArgumentParser
import IOPool

/// `iopool bench blocking`: `BlockingBenchmark` for K = 0, 1, 2 and 4 times the thread count on
/// WorkStealingPool and the global executor, and the report.
extension BenchCommand {
    struct Blocking: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Short-task latency while K tasks block: WorkStealingPool's blocking { } vs blocking on the global executor.")

        @Option(parsing: .unconditional, help: "Pool threads (default: the CPUs this process may use).")
        var threads = WorkStealingPool.Configuration.defaultThreadCount
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
            var table = TextTable(
                heading: [heading],
                columns: [("K", 6), ("runtime", 20), ("short tasks", 14), ("p50 µs", 12), ("p99 µs", 12), ("max µs", 0)])
            for result in results {
                table.append([
                    "\(result.blockers)", result.runtime, "\(result.shortTasks)", format1(result.p50Microseconds),
                    format1(result.p99Microseconds), format1(result.maxMicroseconds),
                ])
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
            try BenchReport(
                name: "blocking", table: table, chart: chart, results: BlockingRecord(threads: threads, seconds: seconds, results: results)
            ).publish(into: output.output)
        }
    }
}

struct BlockingRecord: Codable, Sendable {
    var threads: Int
    var seconds: Double
    var results: [BlockingBenchmark.Result]
}
