import ArgumentParser
import Glibc

@main
struct IOPoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iopool",
        abstract: "swift-iopool's command-line tool: example servers (TCP echo, HTTP), a load client and benchmarks.",
        subcommands: [EchoServer.self, HTTPServerCommand.self, LoadCommand.self, BenchCommand.self])

    /// Ignores SIGPIPE before anything runs: a write to a closed pipe then fails with EPIPE
    /// instead of killing the process without a word. A closed stdout ends the program through
    /// `printLine` (exit status 1, a line on stderr); sockets already send with MSG_NOSIGNAL.
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        await main(nil)
    }
}
