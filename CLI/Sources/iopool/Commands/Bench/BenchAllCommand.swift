import ArgumentParser

/// `iopool bench all`, the default of `iopool bench`: echo, scheduler and blocking in turn, each with its
/// defaults, into one output directory.
extension BenchCommand {
    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "all",
            abstract: "echo, scheduler and blocking, each with its defaults (the README's main command).")

        @OptionGroup var output: OutputOptions

        func run() async throws {
            var echo = try Echo.parse([])
            echo.output = output
            try await echo.run()
            printLine("")
            var scheduler = try Scheduler.parse([])
            scheduler.output = output
            try await scheduler.run()
            printLine("")
            var blocking = try Blocking.parse([])
            blocking.output = output
            try await blocking.run()
        }
    }
}
