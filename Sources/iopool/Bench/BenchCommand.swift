import ArgumentParser
import IOPool

/// `iopool bench`: benchmarks run side by side in one process invocation.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the pools against each other and against Swift's global executor.",
        subcommands: [Scheduler.self, Blocking.self, Timers.self])

    struct Scheduler: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "tokio's six runtime benchmarks on IOThreadPool, WorkStealingPool and the global executor.",
            discussion: """
                Runtimes are interleaved per iteration; each cell is the median wall time of one iteration. \
                "WSP Task(pref:)" is the same WorkStealingPool driven with plain Task(executorPreference:) \
                instead of spawn: the scheduler without spawn's shutdown accounting and cancellation scope.
                """)

        @Option(help: "Pool threads (default: the CPUs this process may use).")
        var threads = IOThreadPool.Configuration.defaultThreadCount
        @Option(help: "Measured iterations per benchmark and runtime (after one warm-up).")
        var iterations = 21

        func run() async throws {
            let kinds = BenchRuntime.Kind.allCases
            let runtimes = try kinds.map { try BenchRuntime.make($0, threads: threads) }
            printLine("benchmark (median µs per iteration, \(iterations) iterations, \(threads) threads)")
            printLine(pad("benchmark", 24) + kinds.map { pad($0.rawValue, 18) }.joined() + "global / stealing (spawn, Task(pref:))")
            for benchmark in SchedulerBenchmark.allCases {
                var samples = Array(repeating: [UInt64](), count: runtimes.count)
                for round in 0...iterations {
                    for (index, runtime) in runtimes.enumerated() {
                        let nanoseconds = await benchmark.runOnce(on: runtime, threads: threads)
                        if round > 0 { samples[index].append(nanoseconds) }  // round 0 warms up
                    }
                }
                let medians = samples.map { Double($0.sorted()[$0.count / 2]) / 1000 }
                let global = medians[kinds.firstIndex(of: .global)!]
                let viaSpawn = global / medians[kinds.firstIndex(of: .stealing)!]
                let viaPreference = global / medians[kinds.firstIndex(of: .stealingPreference)!]
                printLine(
                    pad(benchmark.rawValue, 24) + medians.map { pad(String(format1($0)), 18) }.joined()
                        + "\(format2(viaSpawn))×, \(format2(viaPreference))×")
            }
            for runtime in runtimes { await runtime.shutdown() }
        }
    }

    struct Blocking: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Short-task latency while K tasks block: WorkStealingPool's blocking { } vs blocking on the global executor.")

        @Option(help: "Pool threads (default: the CPUs this process may use).")
        var threads = IOThreadPool.Configuration.defaultThreadCount
        @Option(help: "Seconds per configuration.")
        var seconds = 2.0

        func run() async throws {
            printLine("short tasks every \(BlockingBenchmark.arrivalIntervalMicroseconds) µs while K tasks block 50 ms at a time; \(threads) threads")
            printLine(pad("K", 6) + pad("runtime", 20) + pad("short tasks", 14) + pad("p50 µs", 12) + pad("p99 µs", 12) + "max µs")
            for blockers in [0, threads, 2 * threads, 4 * threads] {
                for kind in [BenchRuntime.Kind.stealing, .global] {
                    let result = try await BlockingBenchmark.run(kind: kind, threads: threads, blockers: blockers, seconds: seconds)
                    printLine(
                        pad("\(blockers)", 6) + pad(result.runtime, 20) + pad("\(result.shortTasks)", 14)
                            + pad(format1(result.p50Microseconds), 12) + pad(format1(result.p99Microseconds), 12)
                            + format1(result.maxMicroseconds))
                }
            }
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

func format1(_ value: Double) -> String {
    value.isNaN ? "-" : String(Double(Int((value * 10).rounded())) / 10)
}

func format2(_ value: Double) -> String {
    String(Double(Int((value * 100).rounded())) / 100)
}
