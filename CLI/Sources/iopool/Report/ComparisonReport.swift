/// The table and the chart of a server comparison (`bench echo`, `bench http`): one report path,
/// so that both print the same columns and draw the same three panels (rate, server CPU per
/// operation, p99), client-bound rows marked the same way.
struct ComparisonReport {
    struct Group {
        /// The configuration in the table.
        var label: String
        /// The configuration under its bars (shorter where the heading says the rest).
        var chartLabel: String
        /// The rows of this configuration, in server order; a server may have none.
        var rows: [any ComparedRow]
    }

    /// "iopool bench echo".
    var title: String
    /// What was measured, how, where: the table's first line and the chart's subtitle.
    var heading: String
    var servers: [String]
    var groups: [Group]
    /// The operation, short ("msg", "req") and long ("message", "request").
    var operation: (short: String, long: String)
    /// The rate column's header ("msgs/s", "req/s").
    var rateHeader: String
    /// What the latency is of ("round-trip", "request").
    var latencyKind: String
    /// Who the load client is, for the notes ("the load client", "wrk").
    var client: String

    /// One row per server and configuration, with the ratios to the first server.
    func table() -> TextTable {
        let labelWidth = max(16, (groups.map(\.label.count).max() ?? 0) + 2)
        let serverWidth = max(22, (servers.map(\.count).max() ?? 0) + 2)
        var table = TextTable(
            heading: [heading],
            columns: [
                ("configuration", labelWidth), ("server", serverWidth), (rateHeader, 11), ("p50 µs", 9), ("p99 µs", 9),
                ("CPU µs/\(operation.short)", 12), ("client %", 10), (rateHeader + " ×", 18), ("CPU/\(operation.short) ×", 0),
            ],
            notes: [
                "(× columns: ratio to \(servers.first ?? "-"); for CPU/\(operation.short) lower is better. client %: \(client)'s busiest core; "
                    + "over \(Int(ServerComparison.clientBoundPercent))% the row is client-bound, and no ratio is claimed for it)"
            ])
        for group in groups {
            for row in group.rows {
                table.append([
                    group.label, row.server, "\(Int(row.rate))", format1(row.p50Microseconds), format1(row.p99Microseconds),
                    format2(row.cpuMicrosecondsPerOperation), format1(row.clientCorePercent), row.throughputRatio.text, row.cpuRatio.text,
                ])
            }
        }
        return table
    }

    /// Prints the table and writes `<name>.json` (the options, summaries and samples) and
    /// `<name>.svg` (the chart) into `directory`, as `BenchReport` does for every benchmark.
    func publish<Summary, Sample>(
        name: String, options: ComparisonRecord<Summary, Sample>.Options, summaries: [Summary], samples: [Sample],
        into directory: String
    ) throws {
        try BenchReport(
            name: name, table: table(), chart: chart(),
            results: ComparisonRecord(options: options, summaries: summaries, samples: samples)
        ).publish(into: directory)
    }

    /// Three panels: the rate, the server's CPU per operation and the p99 latency, client-bound bars faded.
    func chart() -> BarChart {
        func values<Value>(_ value: (any ComparedRow) -> Value, absent: Value) -> [[Value]] {
            groups.map { group in servers.map { server in group.rows.first { $0.server == server }.map(value) ?? absent } }
        }
        let clientBound = values(\.clientBound, absent: false)
        let subtitle =
            heading
            + (clientBound.joined().contains(true)
                ? "; * client-bound: \(client)'s core was over \(Int(ServerComparison.clientBoundPercent))% busy, so the client may have set the pace"
                : "")
        let labels = groups.map(\.chartLabel)
        return BarChart(
            title: title, subtitle: subtitle,
            panels: [
                .init(
                    title: "\(operation.long)s/s (higher is better)", groups: labels, series: servers,
                    values: values(\.rate, absent: .nan), marked: clientBound),
                .init(
                    title: "server CPU µs per \(operation.long) (lower is better)", groups: labels, series: servers,
                    values: values(\.cpuMicrosecondsPerOperation, absent: .nan), marked: clientBound),
                .init(
                    title: "\(latencyKind) p99 µs (log scale; lower is better)", groups: labels, series: servers,
                    values: values(\.p99Microseconds, absent: .nan), marked: clientBound, logarithmic: true),
            ])
    }
}

/// The JSON results of a server comparison: how it ran, the medians per server and configuration,
/// and every round's sample (`results.summaries` is what .ci/bench-smoke.sh and
/// .ci/bench-http-smoke.sh check). Each benchmark keeps its own summary and sample field names
/// (messages, requests).
struct ComparisonRecord<Summary: Codable & Sendable, Sample: Codable & Sendable>: Codable, Sendable {
    struct Options: Codable, Sendable {
        /// The program that drove every server, and how.
        var loadClient: String
        var servers: [BenchServer]
        var threads: Int
        var clientThreads: Int
        /// Messages in flight per connection: `bench echo`'s, for every configuration (`bench
        /// http`'s depths are per configuration, and this is absent).
        var depth: Int?
        var rounds: Int
        var warmupSeconds: Double
        var seconds: Double
        var serverCPUs: [Int]?
        var clientCPUs: [Int]?
    }

    var options: Options
    var summaries: [Summary]
    var samples: [Sample]
}
