import ArgumentParser

/// `iopool bench udp`: the options and the table of `UDPBenchmark`'s medians, one datagram per call
/// against batches.
extension BenchCommand {
    struct UDP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "udp",
            abstract: "UDPSocket: one datagram per receive against a UDPReceiveBatch (recvmmsg), draining loopback bursts.")

        // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
        @Option(parsing: .unconditional, help: "Datagrams per burst (the receive buffer must hold a whole burst).")
        var burst = 256
        @Option(parsing: .unconditional, help: "Datagram size in bytes.") var size = 64
        @Option(parsing: .unconditional, help: "Datagrams per batch receive (1...64).") var batch = 32
        @Option(parsing: .unconditional, help: "Rounds per way (the median is reported).") var rounds = 101

        func validate() throws {
            try OptionRules.checkCount(burst, "--burst")
            try OptionRules.checkCount(size, "--size")
            try OptionRules.check(batch, "--batch", in: 1...64)
            try OptionRules.checkCount(rounds, "--rounds")
        }

        func run() async throws {
            let medians = try await UDPBenchmark.medians(burst: burst, size: size, batchSize: batch, rounds: rounds)
            var table = TextTable(
                heading: ["udp: bursts of \(burst) \(size)-byte datagrams on loopback, one IOThread; median ns per datagram of \(rounds) rounds each"],
                columns: [("", 10), ("one per call", 22), ("batch of \(batch)", 22), ("batched speed-up", 0)])
            table.append(["send", format1(medians[0]) + " (sendto)", format1(medians[1]) + " (sendmmsg)", format2(medians[0] / medians[1]) + "×"])
            table.append(["receive", format1(medians[2]) + " (recvfrom)", format1(medians[3]) + " (recvmmsg)", format2(medians[2] / medians[3]) + "×"])
            table.print()
        }
    }
}
