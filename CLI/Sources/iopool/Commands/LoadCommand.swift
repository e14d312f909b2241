import ArgumentParser
import Glibc
import IOPool

/// `iopool load`: a verifying echo load client on IOThreadPool.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Drive an echo server: C connections, K messages of M bytes in flight each, every byte verified.",
        discussion: """
            Prints messages/s and round-trip latency percentiles (a log-linear histogram, 1.6% precision) \
            as a table, or one JSON line with --json. Exits with status 2 if an echo differs from what was \
            sent or the server closes a connection early.
            """)

    // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(parsing: .unconditional, help: "Server port.") var port: Int
    @Option(name: [.customShort("c"), .long], parsing: .unconditional, help: "Connections.") var connections = 16
    @Option(name: [.customShort("m"), .long], parsing: .unconditional, help: "Message size in bytes.") var size = 64
    @Option(name: [.customShort("k"), .long], parsing: .unconditional, help: "Messages in flight per connection (1: ping-pong).")
    var depth = 1
    @Option(parsing: .unconditional, help: "Warm-up seconds (not measured).") var warmup: Double = 1
    @Option(parsing: .unconditional, help: "Measured seconds.") var duration: Double = 5
    @Option(parsing: .unconditional, help: "Client threads (an IOThreadPool).") var threads = 1
    @Flag(help: "Print one JSON line instead of a table.") var json = false

    func validate() throws {
        try OptionRules.checkPort(port, "--port", allowingZero: false)
        try OptionRules.checkCount(connections, "--connections")
        try OptionRules.checkCount(size, "--size")
        try OptionRules.checkCount(depth, "--depth")
        try OptionRules.checkCount(threads, "--threads")
        try OptionRules.checkSeconds(warmup, "--warmup", allowingZero: true)
        try OptionRules.checkSeconds(duration, "--duration", allowingZero: false)
    }

    func run() async throws {
        let options = LoadClient.Options(
            address: try SocketAddress(host: host, port: UInt16(port)), connections: connections, messageSize: size,
            depth: depth, warmup: .seconds(warmup), duration: .seconds(duration), threads: threads)
        let result: LoadClient.Result
        do {
            result = try await LoadClient(options: options).run()
        } catch let failure as LoadClient.EchoFailure {
            printError("load: \(failure)")
            throw ExitCode(2)
        }
        let h = result.histogram
        func us(_ percentile: Double) -> Double { Double(h.value(atPercentile: percentile)) / 1000 }
        if json {
            printLine(
                #"{"connections":\#(connections),"size":\#(size),"depth":\#(depth),"seconds":\#(result.seconds),"messages":\#(result.messages),"messages_per_sec":\#(result.messagesPerSecond),"p50_us":\#(us(50)),"p90_us":\#(us(90)),"p99_us":\#(us(99)),"p999_us":\#(us(99.9)),"max_us":\#(Double(h.max) / 1000)}"#)
        } else {
            printLine("connections \(connections), \(size)-byte messages, depth \(depth), \(result.seconds) s")
            printLine("messages/s  \(Int(result.messagesPerSecond))")
            printLine("latency µs  p50 \(us(50))  p90 \(us(90))  p99 \(us(99))  p99.9 \(us(99.9))  max \(Double(h.max) / 1000)")
        }
    }
}
