import Foundation
import Glibc

/// One run of wrk (https://github.com/wg/wrk, Debian's `wrk`) against one server: `iopool bench
/// http`'s load client for every server, a process of its own pinned to the client's CPUs. A Lua
/// script of ours (written next to the logs) pipelines `depth` requests per write when asked to,
/// and prints wrk's results as one JSON line; the bench reads wrk's CPU time from its resource
/// usage once it has exited, to tell a server-bound configuration from a client-bound one.
struct WrkClient {
    struct Options: Sendable {
        /// wrk's path.
        var binary: String
        var port: UInt16
        var path: String
        var connections: Int
        var depth: Int
        var threads: Int
        /// wrk takes whole seconds only.
        var seconds: Int
        var cpus: [Int]?
        var scriptPath: String
        /// Where its stdout (its report, then our JSON line) and its stderr go.
        var outputPath: String
    }

    /// The script's JSON line.
    struct Result: Decodable, Sendable {
        var requests: UInt64
        var durationMicroseconds: Double
        /// nil where wrk had none to give (see the script).
        var p50Microseconds: Double?
        var p99Microseconds: Double?
        var connectErrors: UInt64
        var readErrors: UInt64
        var writeErrors: UInt64
        /// Responses whose status was 400 or more (wrk counts no other status as an error).
        var statusErrors: UInt64
        var timeouts: UInt64
        /// wrk's CPU time (user and system), from its resource usage: not in the line, set after.
        var cpuSeconds: Double = 0

        enum CodingKeys: String, CodingKey {
            case requests
            case durationMicroseconds = "duration_us"
            case p50Microseconds = "p50_us"
            case p99Microseconds = "p99_us"
            case connectErrors = "connect_errors"
            case readErrors = "read_errors"
            case writeErrors = "write_errors"
            case statusErrors = "status_errors"
            case timeouts
        }

        /// The errors wrk counted, in words; nil when there were none.
        var errorSummary: String? {
            let counts = [
                ("responses with status 400 or more", statusErrors), ("connect errors", connectErrors), ("read errors", readErrors),
                ("write errors", writeErrors), ("timeouts", timeouts),
            ].filter { $0.1 > 0 }
            return counts.isEmpty ? nil : counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
        }
    }

    /// The marker before the script's JSON line in wrk's stdout.
    static let resultMarker = "IOPOOL-WRK "

    /// Pipelines `depth` requests per write when its argument (after `--`) is more than 1: wrk
    /// counts the requests in what `request()` returns and expects as many responses. At depth 1
    /// it defines no `request`, so that wrk sends its static request without calling Lua.
    static let script = """
        -- iopool bench http: pipelining, and wrk's results as one JSON line (written by iopool).
        function init(args)
          local depth = tonumber(args[1]) or 1
          if depth > 1 then
            local requests = {}
            for i = 1, depth do requests[i] = wrk.format() end
            local batch = table.concat(requests)
            request = function() return batch end
          end
        end

        -- wrk's percentile() answers 0 where its coordinated-omission correction put counts below the
        -- minimum it recorded (pipelined runs: it expects a response every duration ÷ requests per
        -- connection); that is no latency: null.
        local function percentile(latency, p)
          local value = latency:percentile(p)
          if value > 0 then return string.format("%.1f", value) else return "null" end
        end

        function done(summary, latency, requests)
          local e = summary.errors
          io.write(string.format(
            '\(resultMarker){"requests":%.0f,"duration_us":%.0f,"p50_us":%s,"p99_us":%s,' ..
            '"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"status_errors":%.0f,"timeouts":%.0f}\\n',
            summary.requests, summary.duration, percentile(latency, 50), percentile(latency, 99),
            e.connect, e.read, e.write, e.status, e.timeout))
        end

        """

    /// Writes the script to `path`.
    static func writeScript(to path: String) throws {
        do {
            try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw BenchError("cannot write wrk's script to \(path): \(error.localizedDescription)")
        }
    }

    /// `name`'s path, as the shell would find it in $PATH; a name with a slash as it is.
    static func find(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        return directories.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    let options: Options

    func run() async throws -> Result {
        let arguments = [
            options.binary, "--threads", "\(options.threads)", "--connections", "\(options.connections)",
            "--duration", "\(options.seconds)s", "--timeout", "10s", "--latency", "--script", options.scriptPath,
            "http://127.0.0.1:\(options.port)\(options.path)", "--", "\(options.depth)",
        ]
        let child = try ChildProcess(
            arguments: arguments, environment: ChildProcess.inheritedEnvironment(), cpus: options.cpus,
            stdoutPath: options.outputPath, stderrPath: options.outputPath)
        // The window, plus slack for connecting and a loaded machine.
        let ending = await child.wait(atMost: Double(options.seconds) + 30)
        let output = (try? String(contentsOfFile: options.outputPath, encoding: .utf8)) ?? ""
        guard child.exitCode == 0 else {
            throw BenchError("wrk ended with \(ending); its output (\(options.outputPath)):\n\(fileTail(options.outputPath))")
        }
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(Self.resultMarker) }) else {
            throw BenchError("wrk printed no result line (\(Self.resultMarker.trimmingCharacters(in: .whitespaces))); its output:\n\(output)")
        }
        var result: Result
        do {
            result = try JSONDecoder().decode(Result.self, from: Data(line.dropFirst(Self.resultMarker.count).utf8))
        } catch {
            throw BenchError("wrk's result line is not the JSON expected (\(error)): '\(line)'")
        }
        result.cpuSeconds = child.cpuSeconds ?? 0
        return result
    }
}
