import ArgumentParser
import Foundation
import IOPool

/// `iopool bench echo`: the options, the servers to start, and the report (the measuring is
/// `EchoBenchmark`'s).
extension BenchCommand {
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
            _ = try OptionRules.parseList(connections, "--connections")
            _ = try OptionRules.parseList(sizes, "--sizes")
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
            let configurations = try OptionRules.parseList(sizes, "--sizes").flatMap { size in
                try OptionRules.parseList(connections, "--connections").map {
                    EchoBenchmark.Configuration(connections: $0, size: size, depth: depth)
                }
            }
            let (serverCPUs, clientCPUs) = noPin ? (nil, nil) : CPUAffinity.split(server: threads, client: clientThreads)
            let options = EchoBenchmark.Options(
                servers: servers, configurations: configurations, rounds: rounds, warmup: warmup, seconds: seconds,
                serverThreads: threads, clientThreads: clientThreads, serverCPUs: serverCPUs, clientCPUs: clientCPUs,
                clientBinary: clientBinary, logDirectory: output.output)
            let pinning = CPUAffinity.describe(server: serverCPUs, client: clientCPUs, clientName: "client")
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
            try report.publish(
                name: "echo",
                options: .init(
                    loadClient: EchoBaselineProgram.loadClient.source, servers: servers, threads: threads,
                    clientThreads: clientThreads, depth: depth, rounds: rounds, warmupSeconds: warmup, seconds: seconds,
                    serverCPUs: serverCPUs, clientCPUs: clientCPUs),
                summaries: summaries, samples: samples, into: output.output)
        }

        private func serverList() throws -> [EchoBenchmark.Server] {
            let executable = try currentExecutable()
            var list: [EchoBenchmark.Server] = []
            for name in servers.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let pool = EchoServerCommand.Pool(rawValue: name) else {
                    throw ValidationError("--servers: unknown server '\(name)' (known: \(EchoServerCommand.Pool.allCases.map(\.rawValue).joined(separator: ", ")))")
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

        static func displayName(_ pool: EchoServerCommand.Pool) -> String {
            switch pool {
            case .io: "IOThreadPool"
            case .stealing: "WorkStealingPool"
            case .global: "global executor"
            case .stealingGlobal: "WSP as global"
            }
        }
    }
}
