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
    /// Busier than this (percent of a core), the client may be what limits the rate.
    static let clientBoundPercent = 90.0

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
        /// The compiled C load client.
        var clientBinary: String
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
        var clientCPUSeconds: Double
        /// How busy the client's busiest core was over the window, in percent: its busiest
        /// thread's CPU time, or the process's spread over the cores it has, whichever is more.
        var clientCorePercent: Double
    }

    /// A ratio to the first server, or why there is none.
    enum Ratio: Codable, Sendable, Equatable {
        case value(Double)
        /// This server's configuration was client-bound.
        case clientBound
        /// The first server's was: there is nothing fair to compare with.
        case referenceClientBound

        var text: String {
            switch self {
            case .value(let value): format2(value)
            case .clientBound: "client-bound"
            case .referenceClientBound: "ref client-bound"
            }
        }

        /// A number, or the text saying why there is none.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            if case .value(let value) = self { try container.encode(value) } else { try container.encode(text) }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Double.self) {
                self = .value(value)
            } else {
                self = try container.decode(String.self) == Ratio.clientBound.text ? .clientBound : .referenceClientBound
            }
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
        var processes: [ServerProcess] = []
        defer {
            // Reached only on an error path with servers still up; the normal path stops them below.
            // Each is collected too, not only killed: a killed child left uncollected is a zombie.
            for process in processes { process.killNow() }
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
                            + "\(format2(sample.serverCPUMicrosecondsPerMessage)) µs CPU/msg, client core \(Int(sample.clientCorePercent.rounded()))%")
                }
            }
        }
        for process in processes {
            let ending = await process.stop()
            if ending != "exit status 0" { progress("warning: \(process.name) ended with \(ending) on SIGTERM") }
        }
        processes = []
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
        var summaries: [Summary] = []
        for configuration in configurations {
            var first: Summary?
            for server in servers {
                let rounds = samples.filter {
                    $0.server == server && $0.connections == configuration.connections && $0.size == configuration.size
                        && $0.depth == configuration.depth
                }
                guard !rounds.isEmpty else { continue }
                let clientCorePercent = median(rounds.map(\.clientCorePercent))
                var summary = Summary(
                    server: server, connections: configuration.connections, size: configuration.size,
                    depth: configuration.depth, messagesPerSecond: median(rounds.map(\.messagesPerSecond)),
                    p50Microseconds: median(rounds.map(\.p50Microseconds)), p99Microseconds: median(rounds.map(\.p99Microseconds)),
                    serverCPUMicrosecondsPerMessage: median(rounds.map(\.serverCPUMicrosecondsPerMessage)),
                    clientCorePercent: clientCorePercent, clientBound: clientCorePercent > Self.clientBoundPercent,
                    throughputRatio: .value(1), cpuPerMessageRatio: .value(1))
                let reference = first ?? summary
                if summary.clientBound {
                    (summary.throughputRatio, summary.cpuPerMessageRatio) = (.clientBound, .clientBound)
                } else if reference.clientBound {
                    (summary.throughputRatio, summary.cpuPerMessageRatio) = (.referenceClientBound, .referenceClientBound)
                } else {
                    summary.throughputRatio = .value(summary.messagesPerSecond / reference.messagesPerSecond)
                    summary.cpuPerMessageRatio = .value(summary.serverCPUMicrosecondsPerMessage / reference.serverCPUMicrosecondsPerMessage)
                }
                if first == nil { first = summary }
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
