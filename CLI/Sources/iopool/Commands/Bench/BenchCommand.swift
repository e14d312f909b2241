import ArgumentParser

/// `iopool bench`: benchmarks run side by side in one invocation. With no subcommand it runs all
/// three with their defaults (about 3 minutes); each writes a table on stdout, progress on stderr,
/// and a JSON file of raw results and an SVG chart into `--output`.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the pools against each other, against Swift's global executor, and against other servers.",
        subcommands: [All.self, Echo.self, HTTP.self, Scheduler.self, Blocking.self, Timers.self, UDP.self],
        defaultSubcommand: All.self)

    struct OutputOptions: ParsableArguments {
        @Option(help: "Directory for the JSON results, the SVG charts and the servers' logs.")
        var output = "bench-results"
    }
}
