import IOPool
import ServiceLifecycle

/// An ``HTTPServer`` serving its listeners as a swift-service-lifecycle `Service`: the group's
/// graceful shutdown becomes ``HTTPServer/beginGracefulShutdown()`` (stop accepting, finish the
/// requests in flight with `Connection: close`, close idle connections; `run()` returns when the
/// last connection has closed), and cancellation closes every connection at once.
///
/// List the pool before the service in the group, so that it stops after it (a `ServiceGroup`
/// shuts its services down in reverse order):
///
/// ```swift
/// let pool = try IOThreadPool()
/// let server = HTTPServer { _, _, writer in
///     try await writer.respond(HTTPResponse(status: .ok), body: Array("Hello, World!".utf8))
/// }
/// let http = try HTTPService(server, listeners: pool.listenOnEveryThread(SocketAddress("127.0.0.1:8080")), on: pool)
/// let group = ServiceGroup(configuration: .init(
///     services: [.init(service: pool), .init(service: http)],
///     gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "server")))
/// try await group.run()
/// ```
public struct HTTPService: Service {
    public let server: HTTPServer
    private let serve: @Sendable () async throws -> Void

    /// Serves `listeners` (one per thread, from ``IOThreadPool/listenOnEveryThread(_:backlog:)``)
    /// on `pool`'s threads, each connection on the thread that accepted it.
    public init(_ server: HTTPServer, listeners: [TCPListener], on pool: IOThreadPool) {
        self.server = server
        self.serve = { try await server.serve(listeners, on: pool) }
    }

    /// Serves `listener` on `pool`'s workers.
    public init(_ server: HTTPServer, listener: TCPListener, on pool: WorkStealingPool) {
        self.server = server
        self.serve = { try await server.serve(listener, on: pool) }
    }

    /// Serves until the group shuts down gracefully and the last connection has closed.
    ///
    /// - Throws: `CancellationError` when cancelled (every connection is closed first); an
    ///   accept error that ended an accept loop.
    public func run() async throws {
        let server = self.server
        try await withGracefulShutdownHandler {
            try await serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
