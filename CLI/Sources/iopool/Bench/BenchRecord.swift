import Foundation
import Glibc

/// Writes a benchmark's raw results as JSON (with the date, the machine and the command line) and
/// its chart as SVG, next to each other in the output directory.
enum BenchRecord {
    struct Machine: Codable, Sendable {
        var system: String
        var cpuModel: String
        var cpusAllowed: [Int]
        var memoryGiB: Double

        static var current: Machine {
            var names = utsname()
            uname(&names)
            func field<T>(_ value: T) -> String {
                withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            }
            let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }
                .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
            let pages = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
            return Machine(
                system: "\(field(names.sysname)) \(field(names.release)) \(field(names.machine))", cpuModel: model,
                cpusAllowed: CPUAffinity.allowed, memoryGiB: (pages / 1_073_741_824 * 10).rounded() / 10)
        }
    }

    struct Envelope<Results: Encodable>: Encodable {
        var benchmark: String
        var date: String
        var command: [String]
        var machine: Machine
        var results: Results
    }

    static func write<Results: Encodable>(name: String, into directory: String, chart: BarChart, record: Results) throws {
        let envelope = Envelope(
            benchmark: name, date: ISO8601DateFormatter().string(from: Date()), command: CommandLine.arguments,
            machine: .current, results: record)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let jsonPath = directory + "/" + name + ".json"
        let svgPath = directory + "/" + name + ".svg"
        try encoder.encode(envelope).write(to: URL(fileURLWithPath: jsonPath))
        try Data(chart.svg().utf8).write(to: URL(fileURLWithPath: svgPath))
        printError("bench \(name): raw results in \(jsonPath), chart in \(svgPath)")
    }
}

func makeDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw BenchError("cannot create the output directory '\(path)': \(error.localizedDescription)")
    }
}

/// The path of the running executable (to start more of itself as servers).
func currentExecutable() throws -> String {
    do {
        return try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    } catch {
        throw BenchError("cannot find this executable through /proc/self/exe: \(error.localizedDescription)")
    }
}

/// The C programs of Benchmarks/echo-baseline, compiled on the spot for `iopool bench echo`: the
/// minimal epoll echo server (the baseline server) and the ping-pong load client (which drives
/// every server: in C, it costs less per message than any server it drives, so that the server,
/// not the client, sets the pace).
enum EchoBaselineProgram: String {
    case server = "c_epoll_echo"
    case loadClient = "pingpong_client"

    var source: String { "Benchmarks/echo-baseline/\(rawValue).c" }

    /// Compiles the program into `directory` with $CC if set, or else the first of cc, gcc and
    /// clang found; returns the binary's path. Throws, saying what is missing, when the source is not
    /// here (not run from the package root), no compiler is found, or the compiler fails.
    func compile(into directory: String) async throws -> String {
        guard FileManager.default.fileExists(atPath: source) else {
            throw BenchError("\(source) is not here (run the bench from the package root)")
        }
        guard let compiler = try await Self.compiler() else {
            let tried = ProcessInfo.processInfo.environment["CC"].map { "$CC (\($0))" } ?? "cc, gcc or clang"
            throw BenchError("no C compiler (\(tried)) to compile \(source)")
        }
        let binary = directory + "/" + rawValue
        let log = binary + ".compile.log"
        let status = try await runShell("\(compiler) -O2 -Wall -Wextra -pthread -o '\(binary)' '\(source)' >'\(log)' 2>&1")
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw BenchError("\(compiler) could not compile \(source) (exit status \(status)):\n\(output)")
        }
        return binary
    }

    private static func compiler() async throws -> String? {
        let chosen = ProcessInfo.processInfo.environment["CC"].map { [$0] }
        for candidate in chosen ?? ["cc", "gcc", "clang"] {
            if try await runShell("command -v \(candidate) >/dev/null 2>&1") == 0 { return candidate }
        }
        return nil
    }
}

/// Runs a shell command to completion; its exit status.
func runShell(_ command: String) async throws -> CInt {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    try process.run()
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    return process.terminationStatus
}
