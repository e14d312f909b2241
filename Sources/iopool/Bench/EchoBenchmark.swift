import Foundation
import Glibc
import IOPool

/// `iopool bench echo`: echo servers as separate processes, driven in turn by the verifying load
/// client (in this process, on its own CPUs), A B C A B C ... over several rounds, so that the
/// machine's drift lands on every server alike. Per round: messages/s, latency p50/p99, and the
/// server's CPU time per message, read from its process CPU clock exactly at the measured
/// window's edges.
struct EchoBenchmark {
    struct Server: Codable, Sendable {
        var name: String
        /// A shell command; `{port}` becomes a free port, `{threads}` the server thread count.
        var command: String
    }

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
        var logDirectory: String
    }

    /// One measured window: one server, one configuration, one round.
    struct Sample: Codable, Sendable {
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
        /// messages/s of this server ÷ messages/s of the first server.
        var throughputRatio: Double
        /// CPU per message of this server ÷ CPU per message of the first server (lower is better).
        var cpuPerMessageRatio: Double
    }

    let options: Options

    func run(progress: (String) -> Void) async throws -> (samples: [Sample], summaries: [Summary]) {
        var processes: [ServerProcess] = []
        defer {
            // Reached only on an error path with servers still up; the normal path stops them below.
            for process in processes where process.isRunning { kill(process.pid, SIGKILL) }
        }
        for server in options.servers {
            progress("starting \(server.name): \(server.command)")
            let command = server.command.replacingOccurrences(of: "{threads}", with: String(options.serverThreads))
            processes.append(
                try await ServerProcess.start(
                    name: server.name, command: command, cpus: options.serverCPUs,
                    logPath: options.logDirectory + "/echo-server-" + fileName(server.name) + ".log"))
        }
        var samples: [Sample] = []
        let total = options.configurations.count * options.rounds * processes.count
        var done = 0
        for configuration in options.configurations {
            for round in 1...options.rounds {
                for process in processes {
                    done += 1
                    let sample = try await measure(process, configuration, round: round)
                    samples.append(sample)
                    if sample.serverCPUSeconds.isNaN {
                        progress("warning: \(process.name)'s CPU clock did not move; does its command exec the server, or wrap it?")
                    }
                    progress(
                        "[\(done)/\(total)] \(configuration.label), round \(round), \(process.name): "
                            + "\(Int(sample.messagesPerSecond)) msg/s, p99 \(format1(sample.p99Microseconds)) µs, "
                            + "\(format2(sample.serverCPUMicrosecondsPerMessage)) µs CPU/msg")
                }
            }
        }
        for process in processes {
            let ending = await process.stop()
            if ending != "exit status 0" { progress("warning: \(process.name) ended with \(ending) on SIGTERM") }
        }
        processes = []
        return (samples, summarize(samples))
    }

    private func measure(_ process: ServerProcess, _ configuration: Configuration, round: Int) async throws -> Sample {
        let client = LoadClient(
            options: .init(
                address: try SocketAddress(host: "127.0.0.1", port: process.port), connections: configuration.connections,
                messageSize: configuration.size, depth: configuration.depth, warmup: .seconds(options.warmup),
                duration: .seconds(options.seconds), threads: options.clientThreads, cpus: options.clientCPUs))
        let result: LoadClient.Result
        do {
            result = try await client.run(windowReading: { try process.cpuNanoseconds() })
        } catch {
            let state = process.isRunning ? "still running" : "no longer running"
            throw BenchError("\(process.name) (\(configuration.label)): \(error); the server is \(state); its output:\n\(process.logTail())")
        }
        var cpuSeconds = Double(result.windowReadingDelta ?? 0) / 1e9
        if cpuSeconds == 0 {
            // A wrapper (`timeout`, `swift run`) that does not exec the server: its own clock stands still.
            cpuSeconds = .nan
        }
        let histogram = result.histogram
        return Sample(
            server: process.name, connections: configuration.connections, size: configuration.size,
            depth: configuration.depth, round: round, messages: result.messages, seconds: result.seconds,
            messagesPerSecond: result.messagesPerSecond,
            p50Microseconds: Double(histogram.value(atPercentile: 50)) / 1000,
            p99Microseconds: Double(histogram.value(atPercentile: 99)) / 1000,
            serverCPUSeconds: cpuSeconds,
            serverCPUMicrosecondsPerMessage: result.messages == 0 ? .nan : cpuSeconds * 1e6 / Double(result.messages))
    }

    private func summarize(_ samples: [Sample]) -> [Summary] {
        var summaries: [Summary] = []
        for configuration in options.configurations {
            var first: Summary?
            for server in options.servers {
                let rounds = samples.filter {
                    $0.server == server.name && $0.connections == configuration.connections && $0.size == configuration.size
                        && $0.depth == configuration.depth
                }
                guard !rounds.isEmpty else { continue }
                var summary = Summary(
                    server: server.name, connections: configuration.connections, size: configuration.size,
                    depth: configuration.depth, messagesPerSecond: median(rounds.map(\.messagesPerSecond)),
                    p50Microseconds: median(rounds.map(\.p50Microseconds)), p99Microseconds: median(rounds.map(\.p99Microseconds)),
                    serverCPUMicrosecondsPerMessage: median(rounds.map(\.serverCPUMicrosecondsPerMessage)),
                    throughputRatio: 1, cpuPerMessageRatio: 1)
                if let first {
                    summary.throughputRatio = summary.messagesPerSecond / first.messagesPerSecond
                    summary.cpuPerMessageRatio = summary.serverCPUMicrosecondsPerMessage / first.serverCPUMicrosecondsPerMessage
                } else {
                    first = summary
                }
                summaries.append(summary)
            }
        }
        return summaries
    }

    private func fileName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
    }
}

/// The median (the mean of the middle two for an even count); NaN for no values.
func median(_ values: [Double]) -> Double {
    let sorted = values.filter { !$0.isNaN }.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
