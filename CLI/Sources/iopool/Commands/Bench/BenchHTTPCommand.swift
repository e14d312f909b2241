import ArgumentParser
import Foundation
import IOPool

/// `iopool bench http`: the options, the servers to start, and the report (the measuring is
/// `HTTPBenchmark`'s).
extension BenchCommand {
    struct HTTP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "HTTP servers as separate processes, driven in turn by wrk: our http-server and any peer (nginx, Hummingbird).",
            discussion: """
                Servers: our http-server on IOThreadPool (io, first: the ratios are to it) and on \
                WorkStealingPool (stealing), then every --peer NAME=COMMAND: nginx with --peer 'nginx=bash \
                Benchmarks/http/nginx-peer.sh {port} {threads}', Hummingbird on SwiftNIO with --peer \
                'hummingbird=IOPoolHummingbird/.build/release/hummingbird-bench-server --server nio --host \
                127.0.0.1 --port {port} --threads {threads}' (built with `swift build -c release --package-path \
                IOPoolHummingbird`). Each serves GET /plaintext and GET /json \
                (TechEmpower's tests) on a free loopback port, as its own process; the servers take the \
                first --threads CPUs and wrk the next --client-threads ones. Per configuration (connections \
                × pipelining depth × path) and round: one request that must answer 200 with the route's \
                Content-Type and body, a wrk warm-up of --warmup s, then --seconds s measured. Rounds \
                interleave the servers (A B C A B C ...); the table shows medians over the rounds and ratios \
                to the first server. Server CPU per request is the CPU time of the server's process tree over \
                the measured run divided by the requests wrk completed; wrk % is how busy wrk's core was. \
                Where that is over 90%, wrk may have set the pace: the row is client-bound and no ratio is \
                claimed for it. Any error wrk counts (a status of 400 or more, a socket error, a timeout) \
                fails the bench. Needs wrk (Debian: apt-get install wrk).
                """)

        @Option(help: "Our servers, in order: io, stealing (comma-separated; empty for none).")
        var servers = "io,stealing"
        @Option(
            name: .customLong("peer"),
            help: ArgumentHelp(
                "Another server as NAME=COMMAND (repeatable); {port} and {threads} are substituted.",
                valueName: "name=command"))
        var peers: [String] = []
        // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
        @Option(parsing: .unconditional, help: "Server threads.") var threads = 1
        @Option(parsing: .unconditional, help: "wrk threads (at most the fewest connections).") var clientThreads = 1
        @Option(parsing: .unconditional, help: "Connection counts (comma-separated).") var connections = "64"
        @Option(parsing: .unconditional, help: "Pipelining depths: requests per connection per write (comma-separated).")
        var depths = "1,16"
        @Option(help: "Paths, of \(TechEmpowerRoute.allCases.map(\.path).joined(separator: ", ")) (comma-separated).")
        var paths = TechEmpowerRoute.allCases.map(\.path).joined(separator: ",")
        @Option(parsing: .unconditional, help: "Rounds per server and configuration.") var rounds = 3
        @Option(parsing: .unconditional, help: "Warm-up seconds (whole: wrk's unit) before each measured run; 0: none.")
        var warmup = 1
        @Option(parsing: .unconditional, help: "Seconds (whole: wrk's unit) per measured run.") var seconds = 3
        @Option(help: "The wrk to run.") var wrk = "wrk"
        @Flag(help: "Do not pin the servers and wrk to separate CPUs.") var noPin = false
        @OptionGroup var output: OutputOptions

        func validate() throws {
            try OptionRules.checkCount(threads, "--threads")
            try OptionRules.checkCount(clientThreads, "--client-threads")
            try OptionRules.checkCount(rounds, "--rounds")
            try OptionRules.check(warmup, "--warmup", in: 0...3600)
            try OptionRules.check(seconds, "--seconds", in: 1...3600)
            _ = try configurationList()
            _ = try serverList(executable: "iopool")
        }

        /// Every connections × depth × path, in that nesting (paths outermost, as the chart groups them).
        func configurationList() throws -> [HTTPBenchmark.Configuration] {
            let connectionCounts = try OptionRules.parseList(connections, "--connections")
            let depthList = try OptionRules.parseList(depths, "--depths")
            let routes = paths.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !routes.isEmpty else { throw ValidationError("--paths '\(paths)': expected at least one path") }
            for route in routes where TechEmpowerRoute(rawValue: route) == nil {
                throw ValidationError("--paths: unknown path '\(route)' (known: \(TechEmpowerRoute.allCases.map(\.path).joined(separator: ", ")))")
            }
            if let fewest = connectionCounts.min(), clientThreads > fewest {
                throw ValidationError("--client-threads \(clientThreads): wrk needs at least as many connections as threads (--connections has \(fewest))")
            }
            return routes.flatMap { route in
                depthList.flatMap { depth in connectionCounts.map { HTTPBenchmark.Configuration(connections: $0, depth: depth, route: route) } }
            }
        }

        /// Ours, then the peers, in the order given.
        func serverList(executable: String) throws -> [BenchServer] {
            var list: [BenchServer] = []
            for name in Self.names(servers) {
                guard let pool = HTTPServerPool(rawValue: name) else {
                    throw ValidationError("--servers: unknown server '\(name)' (known: \(HTTPServerPool.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                list.append(
                    .init(
                        name: pool.displayName,
                        command: "'\(executable)' http-server --host 127.0.0.1 --port {port} --threads {threads} --pool \(pool.rawValue) --grace-period 1"))
            }
            list += try peers.map { try BenchServer.peer($0, example: "nginx='bash Benchmarks/http/nginx-peer.sh {port} {threads}'") }
            try BenchServer.checkNames(list)
            return list
        }

        /// The servers to run, ours as this very executable.
        func serverList() throws -> [BenchServer] {
            try serverList(executable: try currentExecutable())
        }

        private static func names(_ list: String) -> [String] {
            list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        func run() async throws {
            try makeDirectory(output.output)
            let servers = try serverList()
            guard let wrkPath = WrkClient.find(wrk) else {
                throw BenchError("bench http: wrk ('\(wrk)') is not installed or not executable (Debian: apt-get install wrk)")
            }
            let configurations = try configurationList()
            let (serverCPUs, clientCPUs) = noPin ? (nil, nil) : CPUAffinity.split(server: threads, client: clientThreads)
            let options = HTTPBenchmark.Options(
                servers: servers, configurations: configurations, rounds: rounds, warmup: warmup, seconds: seconds,
                serverThreads: threads, clientThreads: clientThreads, serverCPUs: serverCPUs, clientCPUs: clientCPUs,
                wrk: wrkPath, logDirectory: output.output)
            let pinning = CPUAffinity.describe(server: serverCPUs, client: clientCPUs, clientName: "wrk")
            let heading =
                "http: \(threads) server thread(s), wrk with \(clientThreads) thread(s), \(pinning); "
                + "medians of \(rounds) interleaved rounds of \(seconds) s after \(warmup) s of warm-up"
            printError(
                "bench http: \(servers.count) servers × \(configurations.count) configurations × \(rounds) rounds, "
                    + "about \(servers.count * configurations.count * rounds * (warmup + seconds)) s")
            let (samples, summaries) = try await HTTPBenchmark(options: options).run(progress: { printError("bench http: " + $0) })

            let report = ComparisonReport(
                title: "iopool bench http", heading: heading, servers: servers.map(\.name),
                groups: configurations.map { configuration in
                    .init(
                        label: configuration.label, chartLabel: configuration.label,
                        rows: summaries.filter {
                            $0.connections == configuration.connections && $0.depth == configuration.depth && $0.route == configuration.route
                        })
                },
                operation: ("req", "request"), rateHeader: "req/s", latencyKind: "request latency", client: "wrk")
            try report.publish(
                name: "http",
                options: .init(
                    loadClient: "wrk, with the Lua script wrk-iopool.lua written next to this file", servers: servers,
                    threads: threads, clientThreads: clientThreads, rounds: rounds, warmupSeconds: Double(warmup),
                    seconds: Double(seconds), serverCPUs: serverCPUs, clientCPUs: clientCPUs),
                summaries: summaries, samples: samples, into: output.output)
        }
    }
}

/// `bench http --servers`: our http-server's pools.
enum HTTPServerPool: String, CaseIterable {
    case io
    case stealing

    var displayName: String {
        switch self {
        case .io: "IOThreadPool"
        case .stealing: "WorkStealingPool"
        }
    }
}
