import ArgumentParser

/// What `iopool bench echo` and `iopool bench http` share: servers under test, compared row by row
/// (one row per server and configuration, medians over the rounds) with the first server, except
/// where the load client rather than the server set the pace.
enum ServerComparison {
    /// Busier than this (percent of a core), the load client may be what limits the rate: the row
    /// is client-bound and no ratio is claimed for it.
    static let clientBoundPercent = 90.0
}

/// A server under test.
struct BenchServer: Codable, Sendable {
    var name: String
    /// A shell command; `{port}` becomes a free port, `{threads}` the server thread count.
    var command: String

    /// A `--peer NAME=COMMAND` argument; `example` is shown when it is not of that form.
    static func peer(_ argument: String, example: String) throws -> BenchServer {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex, argument.index(after: equals) != argument.endIndex
        else {
            throw ValidationError("--peer '\(argument)': expected NAME=COMMAND, e.g. \(example)")
        }
        return BenchServer(name: String(argument[..<equals]), command: String(argument[argument.index(after: equals)...]))
    }

    /// Refuses an empty list and two servers of the same name (their rows and logs would mix).
    static func checkNames(_ servers: [BenchServer]) throws {
        guard !servers.isEmpty else { throw ValidationError("no servers to measure: give --servers or --peer") }
        guard Set(servers.map(\.name)).count == servers.count else { throw ValidationError("two servers have the same name") }
    }
}

/// A ratio to the first server, or why there is none.
enum BenchRatio: Codable, Sendable, Equatable {
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
            self = try container.decode(String.self) == BenchRatio.clientBound.text ? .clientBound : .referenceClientBound
        }
    }
}

/// One row of a comparison: a server in one configuration, medians over its rounds. Each
/// benchmark's summary keeps its own JSON field names (messages, requests) and maps them here.
protocol ComparedRow {
    var server: String { get }
    /// Operations (messages, requests) per second.
    var rate: Double { get }
    var p50Microseconds: Double { get }
    var p99Microseconds: Double { get }
    /// The server's CPU time per operation.
    var cpuMicrosecondsPerOperation: Double { get }
    /// How busy the load client's busiest core was, in percent.
    var clientCorePercent: Double { get }
    var clientBound: Bool { get }
    /// rate ÷ the first server's rate.
    var throughputRatio: BenchRatio { get set }
    /// CPU per operation ÷ the first server's (lower is better).
    var cpuRatio: BenchRatio { get set }
}

extension Array where Element: ComparedRow {
    /// Sets the ratios of the rows of one configuration (in server order) to the first row's:
    /// none for a client-bound row, and none for any row when the first one is client-bound.
    func comparedToFirst() -> [Element] {
        guard let reference = first else { return self }
        return map { row in
            var row = row
            if row.clientBound {
                (row.throughputRatio, row.cpuRatio) = (.clientBound, .clientBound)
            } else if reference.clientBound {
                (row.throughputRatio, row.cpuRatio) = (.referenceClientBound, .referenceClientBound)
            } else {
                row.throughputRatio = .value(row.rate / reference.rate)
                row.cpuRatio = .value(row.cpuMicrosecondsPerOperation / reference.cpuMicrosecondsPerOperation)
            }
            return row
        }
    }
}

/// The median (the mean of the middle two for an even count); NaN for no values.
func median(_ values: [Double]) -> Double {
    let sorted = values.filter { !$0.isNaN }.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
