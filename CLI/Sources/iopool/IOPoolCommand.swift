import ArgumentParser

/// `iopool`: the root command, its subcommands one file each in Commands/.
@main
struct IOPoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iopool",
        abstract: "swift-iopool's command-line tool: example servers (TCP echo, HTTP), a load client and benchmarks.",
        subcommands: [EchoServerCommand.self, HTTPServerCommand.self, LoadCommand.self, BenchCommand.self])

    /// Ignores SIGPIPE before anything runs (see `Signals.ignoreBrokenPipe`).
    static func main() async {
        Signals.ignoreBrokenPipe()
        await main(nil)
    }
}
