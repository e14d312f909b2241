import ArgumentParser
import IOPool
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle

/// `iopool echo-server`: the echo example of tokio-io-pool, written with the public API: an accept loop (`EchoService`) whose
/// connections are spawned round-robin onto the pool, each copying its read side to its write side.
///
/// It runs as a swift-service-lifecycle `ServiceGroup`: [the pool, the echo server]. The group
/// shuts services down in reverse order, so on SIGINT or SIGTERM the server stops accepting first,
/// then the pool drains the connections still running on it; `--grace-period` is the group's
/// `maximumGracefulShutdownDuration`, after which the group cancels both (the pool's `shutdown()`).
struct EchoServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "Serve TCP echo: every byte a client sends comes back; half-close is honoured.",
        discussion: """
            Prints "listening on HOST:PORT" on stdout once it accepts. On SIGINT or SIGTERM it stops \
            accepting and lets open connections finish for up to --grace-period seconds, then exits \
            with status 0; connections still open after that are cancelled and it exits with status \
            1. Further signals during the grace period are ignored (swift-service-lifecycle's \
            ServiceGroup handles them). Warnings of the pool (accept back-off when out of \
            descriptors, the blocking budget exhausted) go to stderr.
            """)

    enum Pool: String, ExpressibleByArgument, CaseIterable {
        /// IOThreadPool: a thread per core, each with its own event loop.
        case io
        /// WorkStealingPool: workers with local queues, stealing, one shared I/O driver.
        case stealing
        /// Swift's default global executor, with the same net types: the baseline a Swift user has
        /// today. Sockets wait on the default IOThreadPool's loops, so every wait hops there and back.
        case global
        /// A WorkStealingPool installed as Swift's global executor, serving as `global` does (plain
        /// child tasks): the same code, now on the pool's workers and shared driver.
        case stealingGlobal = "stealing-global"
    }

    @Option(help: "Address to bind (a numeric IPv4 or IPv6 address).")
    var host = "127.0.0.1"

    // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
    @Option(parsing: .unconditional, help: "Port to bind; 0 picks a free one.")
    var port: Int = 7000

    @Option(parsing: .unconditional, help: "Pool threads (default: the CPUs this process may use; --pool global ignores it).")
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
        var logger = Logger(label: "iopool.echo-server", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .info
        let address = try SocketAddress(host: host, port: UInt16(port))
        let placement: EchoService.Placement
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        switch self.pool {
        case .io:
            let pool = try IOThreadPool(configuration: .init(threadCount: threads, threadNamePrefix: "echo-", logger: logger))
            services.append(.init(service: pool))
            placement = .pool(pool)
        case .stealing:
            let pool = try WorkStealingPool(configuration: .init(threadCount: threads, threadNamePrefix: "echo-ws-", logger: logger))
            services.append(.init(service: pool))
            placement = .pool(pool)
        case .global:
            placement = .global
        case .stealingGlobal:
            // Not a service: the global executor's pool never shuts down (the process's end stops it).
            _ = try WorkStealingPool.unsafeInstallAsGlobalExecutor(
                configuration: .init(threadCount: threads, threadNamePrefix: "echo-wsg-", logger: logger))
            placement = .global
        }
        let listener = try TCPListener.bind(address)
        // After the pool: the group shuts down in reverse order, so the server stops first.
        services.append(.init(service: EchoService(listener: listener, placement: placement, gracePeriod: gracePeriod)))

        var configuration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = Duration.seconds(gracePeriod)
        let group = ServiceGroup(configuration: configuration)
        do {
            try await group.run()
        } catch is CancellationError {
            printError("echo-server: the grace period (\(gracePeriod) s) passed; cancelled the connections still open")
            printError("echo-server: stopped; accept back-offs (out of descriptors or memory): \(listener.acceptBackoffCount)")
            throw ExitCode(1)
        }
        printError("echo-server: stopped; accept back-offs (out of descriptors or memory): \(listener.acceptBackoffCount)")
    }
}
