import IOPool
import ServiceLifecycle

/// The accept loop as a `Service`: announces the address, accepts until the group's graceful
/// shutdown (or cancellation) closes the listener, and returns.
///
/// On a pool, each connection is a task spawned on the pool (round-robin on IOThreadPool): the
/// pool's own graceful shutdown, which the group runs after this service has returned, waits for
/// them. On the global executor (no pool service) the connections are child tasks of this service,
/// which waits for them itself; cancellation cancels them and ends with `CancellationError`.
struct EchoService: Service {
    enum Placement: Sendable {
        /// Each connection a task spawned on the pool (IOThreadPool or WorkStealingPool).
        case pool(any TaskPool)
        /// Each connection a child task of the service, on the global executor.
        case global
    }

    let listener: TCPListener
    let placement: Placement
    let gracePeriod: Double

    func run() async throws {
        printLine("listening on \(try listener.localAddress)")
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                switch placement {
                case .pool(let pool):
                    try await pool.spawn { try await acceptLoop { connection in try pool.spawn { await Self.echo(connection) } } }.value
                case .global:
                    try await withThrowingDiscardingTaskGroup { group in
                        try await acceptLoop { connection in group.addTask { await Self.echo(connection) } }
                    }
                    // The group waited for the connections; if the grace period passed, it cancelled them.
                    try Task.checkCancellation()
                }
            } onGracefulShutdown: { [listener, gracePeriod] in
                printError("echo-server: shutting down: stopped accepting; open connections have up to \(gracePeriod) s")
                listener.close()  // ends the accept loop
            }
        } onCancel: { [listener] in
            listener.close()
        }
    }

    /// Copies until the client half-closes (EOF), then half-closes back and closes.
    /// A client that resets the connection ends it early; that is not the server's error.
    static func echo(_ connection: TCPStream) async {
        defer { connection.close() }
        do {
            _ = try await copy(from: connection, to: connection)
            try connection.shutdown(.write)
        } catch {
            // ECONNRESET, EPIPE, cancellation at shutdown: nothing to report to anyone.
        }
    }

    /// Accepts until the listener is closed (the shutdown above), passing each connection on.
    private func acceptLoop(_ serve: (TCPStream) throws -> Void) async throws {
        do {
            for try await connection in listener.connections { try serve(connection) }
        } catch let error as IOError where error.errno == .badFileDescriptor {
            // The listener was closed by the shutdown: the loop's normal end.
        }
    }
}
