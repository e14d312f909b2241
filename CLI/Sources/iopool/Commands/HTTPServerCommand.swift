import ArgumentParser
import HTTPTypes
import IOPool
import IOPoolHTTP
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle

/// `iopool http-server`: TechEmpower's plaintext and JSON tests (`TechEmpowerResponder`) on IOPoolHTTP's `HTTPServer`: what `iopool bench http`
/// measures against Hummingbird, nginx and any other peer.
///
/// As `iopool echo-server`, it runs as a swift-service-lifecycle `ServiceGroup`: [the pool, the
/// HTTP server]. The group shuts services down in reverse order, so on SIGINT or SIGTERM the
/// server stops accepting and finishes the requests in flight first (`beginGracefulShutdown`),
/// then the pool drains; `--grace-period` is the group's `maximumGracefulShutdownDuration`.
struct HTTPServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-server",
        abstract: "Serve HTTP/1.1: GET /plaintext (Hello, World!) and GET /json (TechEmpower's tests); other paths 404.",
        discussion: """
            Prints "listening on HOST:PORT" on stdout once it accepts. --pool io: one accept loop per \
            thread (SO_REUSEPORT listeners), each connection on the thread that accepted it; --pool \
            stealing: one listener, connections on the WorkStealingPool's queues. On SIGINT or SIGTERM \
            it stops accepting, finishes the requests in flight (their responses say Connection: close) \
            and closes idle connections, for up to --grace-period seconds, then exits with status 0; \
            if connections are still open after that, they are cancelled and it exits with status 1.
            """)

    enum Pool: String, ExpressibleByArgument, CaseIterable {
        /// IOThreadPool: a thread per core, each with its own event loop and its own listener.
        case io
        /// WorkStealingPool: workers with local queues, stealing, one shared I/O driver.
        case stealing
    }

    @Option(help: "Address to bind (a numeric IPv4 or IPv6 address).")
    var host = "127.0.0.1"

    // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
    @Option(parsing: .unconditional, help: "Port to bind; 0 picks a free one.")
    var port: Int = 8080

    @Option(parsing: .unconditional, help: "Pool threads (default: the CPUs this process may use).")
    var threads: Int = IOThreadPool.Configuration.defaultThreadCount

    @Option(help: "Scheduler: \(Pool.allCases.map(\.rawValue).joined(separator: ", ")).")
    var pool: Pool = .io

    @Option(parsing: .unconditional, help: "Most seconds a graceful shutdown (after SIGINT/SIGTERM) may take before open connections are cancelled.")
    var gracePeriod: Double = 5

    func validate() throws {
        try OptionRules.checkPort(port, "--port", allowingZero: true)
        try OptionRules.checkCount(threads, "--threads")
        try OptionRules.checkSeconds(gracePeriod, "--grace-period", allowingZero: true)
    }

    func run() async throws {
        var logger = Logger(label: "iopool.http-server", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .info
        let address = try SocketAddress(host: host, port: UInt16(port))
        var serverConfiguration = HTTPServer.Configuration()
        serverConfiguration.logger = logger
        let server = HTTPServer(configuration: serverConfiguration, responder: TechEmpowerResponder())
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let http: HTTPService
        let boundAddress: SocketAddress
        switch self.pool {
        case .io:
            let pool = try IOThreadPool(configuration: .init(threadCount: threads, threadNamePrefix: "http-", logger: logger))
            services.append(.init(service: pool))
            let listeners = try pool.listenOnEveryThread(address)
            boundAddress = try listeners[0].localAddress
            http = HTTPService(server, listeners: listeners, on: pool)
        case .stealing:
            let pool = try WorkStealingPool(configuration: .init(threadCount: threads, threadNamePrefix: "http-ws-", logger: logger))
            services.append(.init(service: pool))
            let listener = try TCPListener.bind(address)
            boundAddress = try listener.localAddress
            http = HTTPService(server, listener: listener, on: pool)
        }
        // After the pool: the group shuts down in reverse order, so the server stops first.
        services.append(.init(service: AnnouncedHTTPService(service: http, address: boundAddress, gracePeriod: gracePeriod)))

        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = Duration.seconds(gracePeriod)
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch is CancellationError {
            printError("http-server: the grace period (\(gracePeriod) s) passed; cancelled the connections still open")
            throw ExitCode(1)
        }
        printError("http-server: stopped")
    }
}
