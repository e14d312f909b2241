import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import Logging

/// An HTTP/1.1 server on the pools: keep-alive, pipelining (responses in request order), HTTP/1.0,
/// chunked bodies both ways, `Expect: 100-continue`, HEAD, limits and timeouts that bound what a
/// slow or hostile client costs, a connection limit and graceful shutdown.
///
/// Each connection is one task that reads, parses and calls the responder on its own thread (on
/// an ``IOThreadPool``) or worker (on a ``WorkStealingPool``): no hop between a loop and Swift's
/// global executor per request.
///
/// ```swift
/// let pool = try IOThreadPool()
/// let server = HTTPServer { request, body, writer in
///     try await writer.respond(
///         HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]),
///         body: Array("Hello, World!".utf8))
/// }
/// let listeners = try pool.listenOnEveryThread(SocketAddress("127.0.0.1:8080"))
/// try await server.serve(listeners, on: pool)  // until server.beginGracefulShutdown()
/// ```
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        /// What a request may cost (request line, head, field count, body, chunk extensions).
        public var limits = HTTPRequestLimits()
        /// From the first byte of a request head to its blank line (then `408`, and the
        /// connection closes).
        public var headerTimeout: Duration = .seconds(30)
        /// The most time between two reads of a body that bring bytes (then the responder's read
        /// throws ``HTTPServerError/bodyTimedOut(_:)``).
        public var bodyTimeout: Duration = .seconds(30)
        /// The most time a write may wait for the client to take bytes (then the connection is
        /// closed).
        public var writeTimeout: Duration = .seconds(30)
        /// How long a keep-alive connection may wait for its next request (then it is closed).
        public var idleTimeout: Duration = .seconds(60)
        /// Open connections at most; at the limit, accepting waits (new connections queue in the
        /// listener's backlog) until one closes.
        public var maxConnections = 10_000
        /// Responder failures (as errors) and connection ends (as debug).
        public var logger: Logger?

        public init() {}
    }

    public let configuration: Configuration
    let responder: any HTTPResponder
    let registry: HTTPConnectionRegistry

    public init(configuration: Configuration = Configuration(), responder: some HTTPResponder) {
        self.configuration = configuration
        self.responder = responder
        self.registry = HTTPConnectionRegistry(maxConnections: configuration.maxConnections)
    }

    public convenience init(
        configuration: Configuration = Configuration(),
        handler: nonisolated(nonsending) @escaping @Sendable (HTTPRequest, HTTPRequestBody, HTTPResponseWriter) async throws -> Void
    ) {
        self.init(configuration: configuration, responder: HTTPHandler(handler))
    }

    /// Connections open now.
    public var openConnectionCount: Int { registry.count }

    // MARK: Serving

    /// Accepts on `listener` until it closes (``beginGracefulShutdown()`` closes it), each
    /// connection a task spawned where the caller runs (IOPool's free `spawn`: on the caller's
    /// IOThread or WorkStealingPool, else the default pool); returns when every connection has
    /// ended. Cancelling the caller closes the listener and every connection.
    public func serve(_ listener: TCPListener) async throws {
        try await serving([listener]) {
            try await self.acceptLoop(listener)
        }
    }

    /// One accept loop per thread of `pool`, `listeners[i]` on `pool.threads[i]` (from
    /// ``IOThreadPool/listenOnEveryThread(_:backlog:)``), each connection on the thread that
    /// accepted it.
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `listeners.count` is not the pool's thread count
    ///   (nothing is served, and the listeners stay open and the caller's); else what `serve` throws.
    public func serve(_ listeners: [TCPListener], on pool: IOThreadPool) async throws {
        guard listeners.count == pool.threads.count else {
            throw IOError(
                errno: .invalidArgument, operation: "HTTPServer.serve(_:on:)",
                detail: "needs one listener per thread (\(pool.threads.count)), got \(listeners.count): use listenOnEveryThread")
        }
        try await serving(listeners) {
            var loops: [Task<Void, any Error>] = []
            for (thread, listener) in zip(pool.threads, listeners) {
                loops.append(try thread.spawn { try await self.acceptLoop(listener) })
            }
            var firstError: (any Error)?
            for loop in loops {
                do { try await loop.value } catch { firstError = firstError ?? error }
            }
            if let firstError { throw firstError }
        }
    }

    /// Accepts on `listener` on one of `pool`'s workers; connections go onto the pool's queues.
    public func serve(_ listener: TCPListener, on pool: WorkStealingPool) async throws {
        try await serving([listener]) {
            try await pool.spawn { try await self.acceptLoop(listener) }.value
        }
    }

    /// Serves one connection (for an accept loop of your own); returns when it has closed.
    /// It counts toward ``Configuration/maxConnections`` and graceful shutdown; its timeouts are
    /// kept while a `serve` call of this server runs (that runs the timeout sweeper).
    public func serveConnection(_ connection: TCPStream) async {
        await serveConnection(connection, reserved: false)
    }

    private func serveConnection(_ connection: TCPStream, reserved: Bool) async {
        let control = HTTPConnectionControl(stream: connection)
        registry.add(control, reserved: reserved)
        defer {
            registry.remove(control)
            connection.close()
        }
        await HTTPConnection(stream: connection, control: control, server: self).run()
    }

    /// Stops accepting, lets the requests in flight finish (their responses say
    /// `Connection: close`) and closes connections waiting for their next request. `serve`
    /// returns once the last connection has closed. Idempotent; any thread.
    public func beginGracefulShutdown() {
        registry.beginDraining()
    }

    /// The accept loop: one spawned task per connection, at most `maxConnections` open. The
    /// slot is taken after the accept: a slot taken before it would belong to this listener, and
    /// with one listener per thread the kernel may hand the next connection to another listener
    /// whose loop waits for a slot (none would ever be accepted). So at the limit each accept
    /// loop holds one accepted connection unserved, and the rest wait in the listen backlog.
    private func acceptLoop(_ listener: TCPListener) async throws {
        for try await connection in listener.connections {
            guard await registry.waitForSlot() else {
                connection.close()  // draining: it would be closed unserved anyway
                return
            }
            spawn { await self.serveConnection(connection, reserved: true) }
        }
    }

    /// Runs `acceptLoops` with the listeners registered for shutdown and the timeout sweeper
    /// running, then waits for the connections to end.
    private func serving(_ listeners: [TCPListener], _ acceptLoops: @escaping @Sendable () async throws -> Void) async throws {
        for listener in listeners { registry.add(listener) }
        let sweeper = spawn { await self.sweepTimeouts() }
        defer { sweeper.cancel() }
        try await withTaskCancellationHandler {
            var acceptError: (any Error)?
            do { try await acceptLoops() } catch { acceptError = error }
            // The listeners are closed (shutdown) or failed: either way no more connections come.
            for listener in listeners { listener.close() }
            await registry.waitUntilEmpty()
            try Task.checkCancellation()
            if let acceptError { throw acceptError }
        } onCancel: {
            registry.beginDraining()
            registry.closeAll()
        }
    }

    /// Wakes the waits that passed their deadlines, a few times per shortest timeout (at most
    /// every 5 ms, at least every second): a deadline is kept to within that.
    private func sweepTimeouts() async {
        let shortest = min(configuration.headerTimeout, configuration.bodyTimeout, configuration.writeTimeout, configuration.idleTimeout)
        let interval = max(.milliseconds(5), min(.seconds(1), shortest / 8))
        while !Task.isCancelled {
            do { try await sleep(for: interval) } catch { return }
            registry.expireDue(now: IOClock.now)
        }
    }
}
