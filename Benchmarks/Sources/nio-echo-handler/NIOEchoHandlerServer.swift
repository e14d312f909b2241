// `nio-echo-handler`: SwiftNIO's classic echo server (a ChannelInboundHandler on the event loops),
// with the CLI contract of `iopool echo-server` (see EchoServerCLI), for `iopool bench echo`:
//
//     nio-echo-handler --host 127.0.0.1 --port 0 --threads 1
//
// Shutdown: SIGINT/SIGTERM closes the listening channel; then the event-loop group shuts down,
// which closes the connections still open, and the process exits with status 0.

import ArgumentParser
import EchoServerCLI
import NIOCore
import NIOEchoServers
import NIOPosix

@main
struct NIOEchoHandlerServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nio-echo-handler",
        abstract: "TCP echo on SwiftNIO with a ChannelInboundHandler; half-close is honoured.",
        discussion: """
            Prints "listening on HOST:PORT" on stdout once it accepts. SIGINT or SIGTERM stops it \
            (exit status 0).
            """)

    @OptionGroup var options: EchoServerOptions

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        let server = try await startHandlerEchoServer(group: group, host: options.host, port: options.port)
        await onShutdownSignal { name in
            printError("nio-echo-handler: \(name), shutting down")
            server.close(promise: nil)
        }
        announceListening(host: server.localAddress?.ipAddress ?? options.host, port: server.localAddress?.port ?? options.port)

        try await server.closeFuture.get()
        try await group.shutdownGracefully()
    }
}
