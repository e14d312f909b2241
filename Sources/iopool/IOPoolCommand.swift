import ArgumentParser

@main
struct IOPoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iopool",
        abstract: "swift-iopool's command-line tool: example servers and (later) load and benchmarks.",
        subcommands: [EchoServer.self, LoadCommand.self])
}
