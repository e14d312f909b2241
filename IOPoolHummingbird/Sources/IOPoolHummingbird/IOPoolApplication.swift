public import Hummingbird
public import IOPool
public import IOPoolHTTP
public import Logging
public import ServiceLifecycle
public import UnixSignals

/// Hummingbird's `Application`, on IOPoolHTTP's server and either of IOPool's pools (see
/// ``IOPoolApplicationPool``): on an ``IOPool/IOThreadPool`` it binds one listener per thread
/// (`SO_REUSEPORT`; a connection stays on the thread that accepted it), on a
/// ``IOPool/WorkStealingPool`` one listener; it serves the router there and shuts down gracefully
/// with its `ServiceGroup`.
///
/// ```swift
/// let app = IOPoolApplication(router: router, configuration: .init(address: .loopbackIPv4(port: 8080)))
/// try await app.runService()
/// ```
///
/// Same shape as `Application`: `services` run in the application's own group, before the server
/// (so they stop after it), and `onServerRunning` is called once the listeners are bound.
public struct IOPoolApplication<Responder: Hummingbird.HTTPResponder>: Service, CustomStringConvertible
where Responder.Context: InitializableFromSource<IOPoolRequestContextSource> {
    public struct Configuration: Sendable {
        /// Where to listen. Hummingbird's `BindAddress` keeps its host and port to itself, hence
        /// IOPool's address here.
        public var address: IOPool.SocketAddress
        /// Sent as the `Server` field of every response when set.
        public var serverName: String?
        public var backlog: CInt
        /// Limits, timeouts and the connection cap of the server.
        public var server: HTTPServer.Configuration

        public init(
            address: IOPool.SocketAddress = .loopbackIPv4(port: 8080),
            serverName: String? = nil,
            backlog: CInt = TCPListener.defaultBacklog,
            server: HTTPServer.Configuration = .init()
        ) {
            self.address = address
            self.serverName = serverName
            self.backlog = backlog
            self.server = server
        }
    }

    public let responder: Responder
    public var configuration: Configuration
    /// The threads the server runs on. Not owned: the application neither starts nor stops it
    /// (put a pool of your own first in the outer `ServiceGroup`, so it stops after the server).
    public let pool: IOPoolApplicationPool
    public var services: [any Service]
    public var logger: Logger
    private let onServerRunning: @Sendable (IOPool.SocketAddress) async -> Void

    /// - Parameters:
    ///   - pool: where connections run; by default ``IOPool/IOThreadPool/default`` (one thread per
    ///     CPU), as `Application` defaults to NIO's singleton event loop group.
    ///   - onServerRunning: called with the bound address (the port chosen for port 0).
    public init(
        responder: Responder,
        configuration: Configuration = .init(),
        pool: IOPoolApplicationPool = .ioThreads(.default),
        services: [any Service] = [],
        onServerRunning: @escaping @Sendable (IOPool.SocketAddress) async -> Void = { _ in },
        logger: Logger? = nil
    ) {
        self.responder = responder
        self.configuration = configuration
        self.pool = pool
        self.services = services
        self.onServerRunning = onServerRunning
        self.logger = logger ?? Logger(label: configuration.serverName ?? "Hummingbird")
    }

    public init<Builder: HTTPResponderBuilder>(
        router: Builder,
        configuration: Configuration = .init(),
        pool: IOPoolApplicationPool = .ioThreads(.default),
        services: [any Service] = [],
        onServerRunning: @escaping @Sendable (IOPool.SocketAddress) async -> Void = { _ in },
        logger: Logger? = nil
    ) where Builder.Responder == Responder {
        self.init(
            responder: router.buildResponder(), configuration: configuration, pool: pool,
            services: services, onServerRunning: onServerRunning, logger: logger)
    }

    public mutating func addServices(_ services: any Service...) {
        self.services.append(contentsOf: services)
    }

    public var description: String { "IOPoolApplication" }

    /// Binds, serves until the group shuts down gracefully (then lets in-flight requests finish),
    /// and returns once every connection has ended.
    public func run() async throws {
        let server = HTTPServer(
            configuration: configuration.server,
            responder: IOPoolHummingbirdResponder(responder, logger: logger, serverName: configuration.serverName))
        // Bound here, not in the service, so that a bind error fails `run()` before any service starts.
        let address: IOPool.SocketAddress
        let http: HTTPService
        switch pool {
        case .ioThreads(let pool):
            let listeners = try pool.listenOnEveryThread(configuration.address, backlog: configuration.backlog)
            address = try listeners[0].localAddress
            http = HTTPService(server, listeners: listeners, on: pool)
        case .workStealing(let pool):
            let listener = try TCPListener.bind(configuration.address, backlog: configuration.backlog)
            address = try listener.localAddress
            http = HTTPService(server, listener: listener, on: pool)
        }
        let serverService = ServerService(
            http: http, onServerRunning: { [onServerRunning] in await onServerRunning(address) })
        let group = ServiceGroup(configuration: .init(services: services + [serverService], logger: logger))
        try await group.run()
    }

    /// Runs the application in a `ServiceGroup` of its own that shuts down gracefully on `signals`.
    public func runService(gracefulShutdownSignals signals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = ServiceGroup(
            configuration: .init(services: [self], gracefulShutdownSignals: signals, logger: logger))
        try await group.run()
    }
}

/// IOPoolHTTP's `HTTPService` (graceful shutdown of the group is the server's), announcing the
/// bound address first as `Application`'s `onServerRunning` does.
private struct ServerService: Service {
    let http: HTTPService
    let onServerRunning: @Sendable () async -> Void

    func run() async throws {
        await onServerRunning()
        try await http.run()
    }
}
