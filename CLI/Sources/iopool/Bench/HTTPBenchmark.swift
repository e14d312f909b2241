import Foundation
import Glibc
import IOPool

/// `iopool bench http`: HTTP servers as separate processes, driven in turn by wrk (its own process,
/// on its own CPUs), A B C A B C ... over several rounds (`InterleavedRounds`, as `bench echo`).
/// Per round: a probe request that must answer 200 with the route's body, an unmeasured wrk run
/// to warm up, then the measured wrk run: requests/s, latency p50/p99, the server's CPU time per
/// request (its process tree's CPU clocks, read just before wrk starts and just after it has
/// exited: an idle server's clock stands still, so the edges cost nothing) and how busy wrk's core
/// was (its CPU time over its duration). A round with any error wrk counted (a status of 400 or
/// more, a socket error, a timeout) fails the bench. A configuration whose wrk core was over 90%
/// busy is client-bound: no ratio is claimed for it. Latencies are wrk's (with its correction for
/// coordinated omission); for pipelined runs, wrk's high percentiles are often missing ("-").
struct HTTPBenchmark {
    struct Configuration: Codable, Sendable, Hashable {
        var connections: Int
        /// Requests pipelined per connection (1: one at a time).
        var depth: Int
        var route: String

        var label: String {
            "\(connections) conn" + (connections == 1 ? "" : "s") + (depth == 1 ? "" : " ×\(depth)") + " \(route)"
        }
    }

    struct Options: Sendable {
        var servers: [BenchServer]
        var configurations: [Configuration]
        var rounds = 3
        /// wrk takes whole seconds; 0 skips the warm-up run.
        var warmup = 1
        var seconds = 3
        var serverThreads = 1
        var clientThreads = 1
        var serverCPUs: [Int]?
        var clientCPUs: [Int]?
        /// wrk's path.
        var wrk: String
        var logDirectory: String
    }

    /// One measured window: one server, one configuration, one round.
    struct Sample: Codable, Sendable, RoundSample {
        var server: String
        var connections: Int
        var depth: Int
        var route: String
        var round: Int
        var requests: UInt64
        var seconds: Double
        var requestsPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        var serverCPUSeconds: Double
        var serverCPUMicrosecondsPerRequest: Double
        var clientCPUSeconds: Double
        /// How busy wrk's busiest core was over the window, in percent: its CPU time spread over
        /// the cores its threads could use (wrk's main thread sleeps while its threads load).
        var clientCorePercent: Double

        var progressSummary: String {
            "\(Int(requestsPerSecond)) req/s, p99 \(format1(p99Microseconds)) µs, "
                + "\(format2(serverCPUMicrosecondsPerRequest)) µs CPU/req, wrk core \(Int(clientCorePercent.rounded()))%"
        }
    }

    /// Medians over the rounds of one server and configuration, with ratios to the first server.
    struct Summary: Codable, Sendable, ComparedRow {
        var server: String
        var connections: Int
        var depth: Int
        var route: String
        var requestsPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        var serverCPUMicrosecondsPerRequest: Double
        var clientCorePercent: Double
        /// The median wrk core was over `ServerComparison.clientBoundPercent` busy.
        var clientBound: Bool
        /// requests/s of this server ÷ requests/s of the first server.
        var throughputRatio: BenchRatio
        /// CPU per request of this server ÷ CPU per request of the first server (lower is better).
        var cpuPerRequestRatio: BenchRatio

        var rate: Double { requestsPerSecond }
        var cpuMicrosecondsPerOperation: Double { serverCPUMicrosecondsPerRequest }
        var cpuRatio: BenchRatio {
            get { cpuPerRequestRatio }
            set { cpuPerRequestRatio = newValue }
        }
    }

    let options: Options

    func run(progress: (String) -> Void) async throws -> (samples: [Sample], summaries: [Summary]) {
        try WrkClient.writeScript(to: scriptPath)
        let rounds = InterleavedRounds(
            benchmark: "http", servers: options.servers, serverThreads: options.serverThreads, serverCPUs: options.serverCPUs,
            logDirectory: options.logDirectory, configurations: options.configurations, rounds: options.rounds)
        let samples = try await rounds.run(label: \.label, measure: measure, progress: progress)
        return (samples, Self.summarize(samples, servers: options.servers.map(\.name), configurations: options.configurations))
    }

    private var scriptPath: String { options.logDirectory + "/wrk-iopool.lua" }

    private func measure(_ process: ServerProcess, _ configuration: Configuration, round: Int) async throws -> Sample {
        func failure(_ error: any Error) -> BenchError {
            let state = process.isRunning ? "still running" : "no longer running"
            return BenchError("\(process.name) (\(configuration.label)): \(error); the server is \(state); its output:\n\(process.logTail())")
        }
        guard let route = TechEmpowerRoute(rawValue: configuration.route) else {
            throw BenchError("\(configuration.route): not a route of the bench (\(TechEmpowerRoute.allCases.map(\.path).joined(separator: ", ")))")
        }
        do {
            try await HTTPProbe.check(port: process.port, route: route)
        } catch {
            throw failure(error)
        }
        func wrk(seconds: Int, output: String) -> WrkClient {
            WrkClient(
                options: .init(
                    binary: options.wrk, port: process.port, path: configuration.route, connections: configuration.connections,
                    depth: configuration.depth, threads: options.clientThreads, seconds: seconds, cpus: options.clientCPUs,
                    scriptPath: scriptPath, outputPath: options.logDirectory + "/" + output))
        }
        let result: WrkClient.Result
        let cpuBefore: Int64
        let cpuAfter: Int64
        do {
            if options.warmup > 0 {
                let warmup = try await wrk(seconds: options.warmup, output: "wrk-warmup.log").run()
                if let errors = warmup.errorSummary { throw BenchError("wrk's warm-up counted \(errors)") }
            }
            cpuBefore = ProcessTreeCPU.nanoseconds(root: process.pid)
            result = try await wrk(seconds: options.seconds, output: "wrk.log").run()
            cpuAfter = ProcessTreeCPU.nanoseconds(root: process.pid)
            if let errors = result.errorSummary { throw BenchError("wrk counted \(errors) in \(result.requests) requests") }
            guard result.requests > 0 else { throw BenchError("wrk completed no request in \(options.seconds) s") }
        } catch {
            throw failure(error)
        }
        // A wrapper (`timeout`, `swift run`) that does not exec the server and whose tree does
        // not include it: no clock moved.
        let cpuSeconds = cpuAfter > cpuBefore ? Double(cpuAfter - cpuBefore) / 1e9 : .nan
        let window = result.durationMicroseconds / 1e6
        let clientCores = Double(min(options.clientThreads, options.clientCPUs?.count ?? options.clientThreads))
        return Sample(
            server: process.name, connections: configuration.connections, depth: configuration.depth, route: configuration.route,
            round: round, requests: result.requests, seconds: window, requestsPerSecond: Double(result.requests) / window,
            p50Microseconds: result.p50Microseconds ?? .nan, p99Microseconds: result.p99Microseconds ?? .nan, serverCPUSeconds: cpuSeconds,
            serverCPUMicrosecondsPerRequest: cpuSeconds * 1e6 / Double(result.requests), clientCPUSeconds: result.cpuSeconds,
            clientCorePercent: result.cpuSeconds / clientCores / window * 100)
    }

    /// Per configuration and server (in the order given), the medians of its rounds and its ratios
    /// to the first server's.
    static func summarize(_ samples: [Sample], servers: [String], configurations: [Configuration]) -> [Summary] {
        configurations.flatMap { configuration in
            servers.compactMap { server -> Summary? in
                let rounds = samples.filter {
                    $0.server == server && $0.connections == configuration.connections && $0.depth == configuration.depth
                        && $0.route == configuration.route
                }
                guard !rounds.isEmpty else { return nil }
                let clientCorePercent = median(rounds.map(\.clientCorePercent))
                return Summary(
                    server: server, connections: configuration.connections, depth: configuration.depth, route: configuration.route,
                    requestsPerSecond: median(rounds.map(\.requestsPerSecond)), p50Microseconds: median(rounds.map(\.p50Microseconds)),
                    p99Microseconds: median(rounds.map(\.p99Microseconds)),
                    serverCPUMicrosecondsPerRequest: median(rounds.map(\.serverCPUMicrosecondsPerRequest)),
                    clientCorePercent: clientCorePercent, clientBound: clientCorePercent > ServerComparison.clientBoundPercent,
                    throughputRatio: .value(1), cpuPerRequestRatio: .value(1))
            }.comparedToFirst()
        }
    }
}
