import ArgumentParser
@_spi(Benchmarks) import IOPool  // SplitMix64

/// `iopool bench timers`: the options and the table of `TimerWorkload`'s runs, the heap against
/// the wheel.
extension BenchCommand {
    struct Timers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Timer heap (the library's) vs a hierarchical timing wheel: insert, cancel most, fire the rest.",
            discussion: """
                For each N: insert N timers with random deadlines in 0-60 s, cancel --cancel-percent of them in \
                random order, fire the rest in order. Prints ns per insert, per cancel and per fire (median of \
                --repetitions runs) and the bytes each structure holds allocated at its peak (after the inserts).
                """)

        // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
        @Option(parsing: .unconditional, help: "Timer counts to measure, comma-separated.")
        var sizes = "10000,100000,1000000"
        @Option(parsing: .unconditional, help: "Percent of the timers cancelled before they fire.")
        var cancelPercent = 90
        @Option(parsing: .unconditional, help: "Runs per size and structure (the median is reported).")
        var repetitions = 5
        @Option(parsing: .unconditional, help: "Seed of the deadlines and the cancel order (0 or more).")
        var seed = 2026

        func validate() throws {
            try OptionRules.check(cancelPercent, "--cancel-percent", in: 0...100)
            try OptionRules.checkCount(repetitions, "--repetitions")
            try OptionRules.check(seed, "--seed", in: 0...Int.max)
            _ = try OptionRules.parseList(sizes, "--sizes")
        }

        func run() async throws {
            printLine("timers: insert N (deadlines uniform in 0-60 s), cancel \(cancelPercent)% in random order, fire the rest")
            printLine("median of \(repetitions) runs; ns per operation; peak = bytes allocated by the structure after the inserts")
            // Printed row by row, as each size is measured (a million timers take a while).
            let table = TextTable(columns: [
                ("N", 10), ("structure", 10), ("insert ns", 11), ("cancel ns", 11), ("fire ns", 11), ("total ms", 10),
                ("peak MiB", 10), ("bytes/timer", 0),
            ])
            printLine(table.titleLine)
            var generator = SplitMix64(seed: UInt64(seed))
            for count in try OptionRules.parseList(sizes, "--sizes") {
                var runs: [[TimerRun]] = [[], []]
                for repetition in 0..<repetitions {
                    let workload = TimerWorkload(count: count, cancelPercent: cancelPercent, using: &generator)
                    // Rotate which goes first, so none always runs on a warm (or cold) allocator.
                    let order = [0, 1].map { ($0 + repetition) % 2 }
                    for structure in order {
                        switch structure {
                        case 0: runs[0].append(try workload.runHeap())
                        default: runs[1].append(try workload.runWheel())
                        }
                    }
                }
                for (name, runs) in zip(["heap", "wheel"], runs) {
                    let median = TimerRun.median(runs)
                    printLine(
                        table.line([
                            "\(count)", name, format1(median.insertNanoseconds), format1(median.cancelNanoseconds),
                            format1(median.fireNanoseconds), format1(median.totalMilliseconds),
                            format2(Double(median.peakBytes) / 1_048_576), format1(Double(median.peakBytes) / Double(count)),
                        ]))
                }
            }
        }
    }
}

