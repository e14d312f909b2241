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

/// The minimal C epoll echo server of Benchmarks/echo-baseline, compiled for `iopool bench echo`.
enum CBaseline {
    static let source = "Benchmarks/echo-baseline/c_epoll_echo.c"

    /// Compiles the baseline into `directory` with the first C compiler found (cc, gcc, clang);
    /// nil if there is no source here (not run from the package root) or no compiler.
    static func build(into directory: String) async throws -> EchoBenchmark.Server? {
        guard FileManager.default.fileExists(atPath: source) else { return nil }
        let binary = directory + "/c_epoll_echo"
        for compiler in ["cc", "gcc", "clang"] {
            let status = try await runShell("command -v \(compiler) >/dev/null 2>&1 && \(compiler) -O2 -o '\(binary)' '\(source)'")
            if status == 0 { return .init(name: "C epoll (1 thread)", command: "'\(binary)' {port}") }
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
