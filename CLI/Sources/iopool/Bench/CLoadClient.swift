import Foundation
import Glibc

/// One run of the C load client (Benchmarks/echo-baseline/pingpong_client.c) against one server:
/// `iopool bench echo`'s client for every server. It is a separate process pinned to the client's
/// CPUs, costs less per message than any server it drives (an in-process Swift client cost about
/// twice the C client per message and saturated before the servers did), and reads, at the exact
/// edges of its measured window, its own CPU clock, each of its threads' and the server's (with
/// `--server-pid`), so the bench can tell a server-bound configuration from a client-bound one.
struct CLoadClient {
    struct Options: Sendable {
        var binary: String
        var port: UInt16
        var connections: Int
        var size: Int
        var depth: Int
        var threads: Int
        var warmup: Double
        var seconds: Double
        var cpus: [Int]?
        var serverPID: pid_t
        /// Where its JSON line (stdout) and its stderr go.
        var outputPath: String
        var logPath: String
    }

    /// The client's JSON line (see the comment at the top of pingpong_client.c).
    struct Result: Decodable, Sendable {
        var threads: Int
        var messages: UInt64
        var windowSeconds: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        var clientCPUNanoseconds: Int64
        var clientBusiestThreadCPUNanoseconds: Int64
        var serverCPUNanoseconds: Int64

        enum CodingKeys: String, CodingKey {
            case threads, messages
            case windowSeconds = "window_sec"
            case p50Microseconds = "p50_us"
            case p99Microseconds = "p99_us"
            case clientCPUNanoseconds = "client_cpu_ns"
            case clientBusiestThreadCPUNanoseconds = "client_busiest_thread_cpu_ns"
            case serverCPUNanoseconds = "server_cpu_ns"
        }
    }

    let options: Options

    func run() async throws -> Result {
        let arguments = [
            options.binary, "--port", "\(options.port)", "--connections", "\(options.connections)", "--size", "\(options.size)",
            "--depth", "\(options.depth)", "--threads", "\(options.threads)", "--warmup", "\(options.warmup)",
            "--seconds", "\(options.seconds)", "--server-pid", "\(options.serverPID)",
        ]
        let child = try ChildProcess(
            arguments: arguments, environment: ChildProcess.inheritedEnvironment(), cpus: options.cpus,
            stdoutPath: options.outputPath, stderrPath: options.logPath)
        // Connecting 256 connections and the window take warmup + seconds; the rest is slack for
        // a loaded machine.
        let ending = await child.wait(atMost: options.warmup + options.seconds + 60)
        guard child.exitCode == 0 else {
            let meaning = child.exitCode == 2 ? " (the server broke the echo contract: bytes differ, or it closed early)" : ""
            throw BenchError("the C load client ended with \(ending)\(meaning); its output (\(options.logPath)):\n\(fileTail(options.logPath))")
        }
        let output = (try? Data(contentsOf: URL(fileURLWithPath: options.outputPath))) ?? Data()
        do {
            return try JSONDecoder().decode(Result.self, from: output)
        } catch {
            throw BenchError(
                "the C load client's output is not the JSON line expected (\(error)): '\(String(decoding: output, as: UTF8.self))'")
        }
    }
}
