import Foundation
import Glibc
import IOPool

/// `iopool bench echo`: echo servers as separate processes, driven in turn by the verifying C load
/// client (its own process, on its own CPUs), A B C A B C ... over several rounds, so that the
/// machine's drift lands on every server alike. Per round: messages/s, latency p50/p99, the
/// server's CPU time per message and how busy the client's core was, both read from CPU clocks
/// exactly at the measured window's edges. A configuration whose client core was over 90% busy
/// is client-bound: the client, not the server, set the pace, so no ratio is claimed for it.
struct EchoBenchmark {
    static let clientBoundPercent = ServerComparison.clientBoundPercent

    typealias Server = BenchServer
    typealias Ratio = BenchRatio

    struct Configuration: Codable, Sendable, Hashable {
        var connections: Int
        var size: Int
        var depth: Int
        var label: String { "\(connections) conn" + (connections == 1 ? "" : "s") + (depth == 1 ? "" : " ×\(depth)") }
    }

    struct Options: Sendable {
        var servers: [Server]
        var configurations: [Configuration]
        var rounds = 3
        var warmup = 0.5
        var seconds = 2.0
        var serverThreads = 1
        var clientThreads = 1
        var serverCPUs: [Int]?
        var clientCPUs: [Int]?
        /// The compiled C load client.
        var clientBinary: String
        var logDirectory: String
    }

    /// One measured window: one server, one configuration, one round.
    struct Sample: Codable, Sendable, RoundSample {
        var server: String
        var connections: Int
        var size: Int
        var depth: Int
        var round: Int
        var messages: UInt64
        var seconds: Double
        var messagesPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        var serverCPUSeconds: Double
        var serverCPUMicrosecondsPerMessage: Double
        var clientCPUSeconds: Double
        /// How busy the client's busiest core was over the window, in percent: its busiest
        /// thread's CPU time, or the process's spread over the cores it has, whichever is more.
        var clientCorePercent: Double

        var progressSummary: String {
            "\(Int(messagesPerSecond)) msg/s, p99 \(format1(p99Microseconds)) µs, "
                + "\(format2(serverCPUMicrosecondsPerMessage)) µs CPU/msg, client core \(Int(clientCorePercent.rounded()))%"
        }
    }

    /// Medians over the rounds of one server and configuration, with ratios to the first server.
    struct Summary: Codable, Sendable {
        var server: String
        var connections: Int
        var size: Int
        var depth: Int
        var messagesPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        var serverCPUMicrosecondsPerMessage: Double
        var clientCorePercent: Double
        /// The median client core was over `clientBoundPercent` busy.
        var clientBound: Bool
        /// messages/s of this server ÷ messages/s of the first server.
        var throughputRatio: Ratio
        /// CPU per message of this server ÷ CPU per message of the first server (lower is better).
        var cpuPerMessageRatio: Ratio
    }

    let options: Options

    func run(progress: (String) -> Void) async throws -> (samples: [Sample], summaries: [Summary]) {
        let rounds = InterleavedRounds(
            benchmark: "echo", servers: options.servers, serverThreads: options.serverThreads, serverCPUs: options.serverCPUs,
            logDirectory: options.logDirectory, configurations: options.configurations, rounds: options.rounds)
        let samples = try await rounds.run(label: \.label, measure: measure, progress: progress)
        return (samples, Self.summarize(samples, servers: options.servers.map(\.name), configurations: options.configurations))
    }

    private func measure(_ process: ServerProcess, _ configuration: Configuration, round: Int) async throws -> Sample {
        let client = CLoadClient(
            options: .init(
                binary: options.clientBinary, port: process.port, connections: configuration.connections,
                size: configuration.size, depth: configuration.depth, threads: options.clientThreads,
                warmup: options.warmup, seconds: options.seconds, cpus: options.clientCPUs, serverPID: process.pid,
                outputPath: options.logDirectory + "/echo-client.json", logPath: options.logDirectory + "/echo-client.log"))
        let result: CLoadClient.Result
        do {
            result = try await client.run()
        } catch {
            let state = process.isRunning ? "still running" : "no longer running"
            throw BenchError("\(process.name) (\(configuration.label)): \(error); the server is \(state); its output:\n\(process.logTail())")
        }
        var cpuSeconds = Double(result.serverCPUNanoseconds) / 1e9
        if cpuSeconds == 0 {
            // A wrapper (`timeout`, `swift run`) that does not exec the server: its own clock stands still.
            cpuSeconds = .nan
        }
        let window = result.windowSeconds
        let clientCores = Double(min(result.threads, options.clientCPUs?.count ?? result.threads))
        let clientCPUSeconds = Double(result.clientCPUNanoseconds) / 1e9
        let busiestThread = Double(result.clientBusiestThreadCPUNanoseconds) / 1e9
        return Sample(
            server: process.name, connections: configuration.connections, size: configuration.size,
            depth: configuration.depth, round: round, messages: result.messages, seconds: window,
            messagesPerSecond: Double(result.messages) / window,
            p50Microseconds: result.p50Microseconds, p99Microseconds: result.p99Microseconds,
            serverCPUSeconds: cpuSeconds,
            serverCPUMicrosecondsPerMessage: result.messages == 0 ? .nan : cpuSeconds * 1e6 / Double(result.messages),
            clientCPUSeconds: clientCPUSeconds,
            clientCorePercent: max(busiestThread, clientCPUSeconds / clientCores) / window * 100)
    }

    /// Per configuration and server (in the order given), the medians of its rounds and its ratios
    /// to the first server's.
    static func summarize(_ samples: [Sample], servers: [String], configurations: [Configuration]) -> [Summary] {
        configurations.flatMap { configuration in
            servers.compactMap { server -> Summary? in
                let rounds = samples.filter {
                    $0.server == server && $0.connections == configuration.connections && $0.size == configuration.size
                        && $0.depth == configuration.depth
                }
                guard !rounds.isEmpty else { return nil }
                let clientCorePercent = median(rounds.map(\.clientCorePercent))
                return Summary(
                    server: server, connections: configuration.connections, size: configuration.size,
                    depth: configuration.depth, messagesPerSecond: median(rounds.map(\.messagesPerSecond)),
                    p50Microseconds: median(rounds.map(\.p50Microseconds)), p99Microseconds: median(rounds.map(\.p99Microseconds)),
                    serverCPUMicrosecondsPerMessage: median(rounds.map(\.serverCPUMicrosecondsPerMessage)),
                    clientCorePercent: clientCorePercent, clientBound: clientCorePercent > Self.clientBoundPercent,
                    throughputRatio: .value(1), cpuPerMessageRatio: .value(1))
            }.comparedToFirst()
        }
    }
}

extension EchoBenchmark.Summary: ComparedRow {
    var rate: Double { messagesPerSecond }
    var cpuMicrosecondsPerOperation: Double { serverCPUMicrosecondsPerMessage }
    var cpuRatio: BenchRatio {
        get { cpuPerMessageRatio }
        set { cpuPerMessageRatio = newValue }
    }
}
