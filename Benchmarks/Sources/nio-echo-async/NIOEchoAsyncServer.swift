// `nio-echo-async`: SwiftNIO's async/await echo server (NIOAsyncChannel, one child task per
// connection), with the CLI contract of `iopool echo-server` (see EchoServerCLI), for
// `iopool bench echo`:
//
//     nio-echo-async --host 127.0.0.1 --port 0 --threads 1
//
// Shutdown: SIGINT/SIGTERM cancels the serving task, which ends the accept stream and every
// connection's stream (each channel is closed); then the event-loop group shuts down and the
// process exits with status 0.

import ArgumentParser
import EchoServerCLI
import NIOCore
import NIOEchoServers
import NIOPosix

@main
struct NIOEchoAsyncServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nio-echo-async",
        abstract: "TCP echo on SwiftNIO's NIOAsyncChannel, a child task per connection; half-close is honoured.",
        discussion: """
            Prints "listening on HOST:PORT" on stdout once it accepts. SIGINT or SIGTERM stops it \
            (exit status 0).
            """)

    @OptionGroup var options: EchoServerOptions

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        let listener = try await bindAsyncEchoServer(group: group, host: options.host, port: options.port)
        let address = listener.channel.localAddress
        let serving = Task { try await serveAsyncEchoServer(listener) }
        await onShutdownSignal { name in
            printError("nio-echo-async: \(name), shutting down")
            serving.cancel()
        }
        announceListening(host: address?.ipAddress ?? options.host, port: address?.port ?? options.port)

        if case .failure(let error) = await serving.result, !(error is CancellationError) {
            printError("nio-echo-async: accept loop ended: \(error)")
        }
        try await group.shutdownGracefully()
    }
}
