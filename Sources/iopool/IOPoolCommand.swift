import ArgumentParser

@main
struct IOPoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iopool",
        abstract: "swift-iopool's command-line tool: example servers, a load client and benchmarks.",
        subcommands: [EchoServer.self, LoadCommand.self, BenchCommand.self])
}
