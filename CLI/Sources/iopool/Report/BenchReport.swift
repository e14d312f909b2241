import Foundation
import Glibc

/// What an `iopool bench` benchmark reports, the one way every benchmark that writes files does:
/// its table on stdout, then its raw results as JSON (with the date, the machine and the command
/// line) and its chart as SVG, next to each other in the output directory, `<name>.json` and
/// `<name>.svg`.
struct BenchReport<Results: Encodable> {
    /// "echo": the files' names and the JSON's `benchmark`.
    var name: String
    var table: TextTable
    var chart: BarChart
    /// The JSON's `results`.
    var results: Results

    /// Prints the table, then writes the JSON and the SVG into `directory`.
    func publish(into directory: String) throws {
        table.print()
        let envelope = BenchEnvelope(
            benchmark: name, date: ISO8601DateFormatter().string(from: Date()), command: CommandLine.arguments,
            machine: .current, results: results)
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

/// The JSON file's top level: the results with what it takes to read them later.
struct BenchEnvelope<Results: Encodable>: Encodable {
    var benchmark: String
    var date: String
    var command: [String]
    var machine: BenchMachine
    var results: Results
}

/// The machine a benchmark ran on, as the JSON file records it.
struct BenchMachine: Codable, Sendable {
    var system: String
    var cpuModel: String
    var cpusAllowed: [Int]
    var memoryGiB: Double

    static var current: BenchMachine {
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let pages = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        return BenchMachine(
            system: "\(field(names.sysname)) \(field(names.release)) \(field(names.machine))", cpuModel: model,
            cpusAllowed: CPUAffinity.allowed, memoryGiB: (pages / 1_073_741_824 * 10).rounded() / 10)
    }
}

/// Creates the output directory (and its parents) if it is not there.
func makeDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw BenchError("cannot create the output directory '\(path)': \(error.localizedDescription)")
    }
}
