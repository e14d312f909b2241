#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import IOPool
import IOPoolHummingbird
import IOPoolServiceLifecycle
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// TechEmpower plaintext and JSON from one Hummingbird router, on Hummingbird's own server
/// (`--server nio`: `Application`, N event loops) or on IOPoolHTTP's (`--server iopool`:
/// `IOPoolApplication` on N threads, an IOThreadPool with `--pool io`, the default, or a
/// WorkStealingPool with `--pool stealing`), for `iopool bench http`. Prints
/// `listening on HOST:PORT` on stdout once bound; SIGTERM or SIGINT shut it down gracefully, exit 0.
@main struct HummingbirdBenchServer {
    /// Both send the same `Server` field, so both responses are the same size.
    static let serverName = "Hummingbird"

    static func main() async {
        let options: BenchServerOptions
        do {
            options = try BenchServerOptions(arguments: CommandLine.arguments.dropFirst())
        } catch {
            printError("error: \(error)\n\(BenchServerOptions.usage)")
            exit(2)
        }
        var logger = Logger(label: "hummingbird-bench-server")
        logger.logLevel = .warning  // no per-start info lines on stderr between benchmark rounds
        do {
            switch options.server {
            case .nio: try await runOnNIO(options, logger: logger)
            case .iopool: try await runOnIOPool(options, logger: logger)
            }
        } catch {
            printError("error: \(error)")
            exit(1)
        }
    }

    static func announce(host: String, port: Int) {
        print("listening on \(host):\(port)")
        fflush(nil)  // stdout is a pipe under `iopool bench http`: the line must not sit in a buffer
    }

    /// Standard error by its descriptor: Glibc's `stderr` is a global var Swift 6 will not touch.
    static func printError(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    static func runOnNIO(_ options: BenchServerOptions, logger: Logger) async throws {
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        let app = Application(
            router: buildBenchRouter(context: BasicRequestContext.self),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: serverName),
            onServerRunning: { channel in announce(host: options.host, port: channel.localAddress?.port ?? options.port) },
            eventLoopGroupProvider: .shared(eventLoops),
            logger: logger)
        try await app.runService()
        try await eventLoops.shutdownGracefully()
    }

    static func runOnIOPool(_ options: BenchServerOptions, logger: Logger) async throws {
        let hostPart = options.host.contains(":") ? "[\(options.host)]" : options.host
        let address = try SocketAddress("\(hostPart):\(options.port)")
        let pool: any Service
        let applicationPool: IOPoolApplicationPool
        switch options.pool {
        case .io:
            let threads = try IOThreadPool(configuration: .init(threadCount: options.threads, threadNamePrefix: "hb-bench-"))
            (pool, applicationPool) = (threads, .ioThreads(threads))
        case .stealing:
            let workers = try WorkStealingPool(configuration: .init(threadCount: options.threads, threadNamePrefix: "hb-bench-"))
            (pool, applicationPool) = (workers, .workStealing(workers))
        }
        let app = IOPoolApplication(
            router: buildBenchRouter(context: IOPoolRequestContext.self),
            configuration: .init(address: address, serverName: serverName),
            pool: applicationPool,
            onServerRunning: { bound in announce(host: options.host, port: Int(bound.port)) },
            logger: logger)
        // The pool first: the group stops it last, after the server has drained.
        let group = ServiceGroup(
            configuration: .init(
                services: [pool, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
