import IOPool
import IOPoolHTTP
import ServiceLifecycle

/// IOPoolHTTP's `HTTPService` with what the command prints: the address once bound, and a line
/// when the graceful shutdown begins (both handlers run on the group's graceful shutdown).
struct AnnouncedHTTPService: Service {
    let service: HTTPService
    let address: SocketAddress
    let gracePeriod: Double

    func run() async throws {
        printLine("listening on \(address)")
        try await withGracefulShutdownHandler {
            try await service.run()
        } onGracefulShutdown: { [gracePeriod] in
            printError("http-server: shutting down: stopped accepting; open connections have up to \(gracePeriod) s")
        }
    }
}
