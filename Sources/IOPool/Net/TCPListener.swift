import CIOPoolShims
import Glibc
import Synchronization
import SystemPackage

/// A listening TCP socket.
///
/// ```swift
/// let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
/// print("listening on \(try listener.localAddress)")
/// for try await connection in listener.connections {
///     spawn {
///         _ = try? await copy(from: connection, to: connection)
///         connection.close()
///     }
/// }
/// ```
///
/// Running out of file descriptors (`EMFILE`, `ENFILE`) or kernel memory (`ENOBUFS`, `ENOMEM`) while
/// accepting does not fail ``accept()`` and does not spin: it waits ``acceptBackoff`` and tries
/// again, so the listener keeps serving once descriptors free up. Errors that concern one queued
/// connection (`ECONNABORTED`, a client that gave up while queued; `EPERM`; and the network errors
/// accept(2) says to retry like `EAGAIN`, such as `ENETDOWN` or `EHOSTUNREACH`) skip that
/// connection: ``accept()`` and ``connections`` go on with the next one.
public final class TCPListener: Sendable {
    let handle: SocketHandle
    private let backoffs = Atomic<Int>(0)

    /// Pause after an accept failed for lack of descriptors or memory. NIO's AcceptBackoffHandler
    /// waits 1 s; we wait 100 ms so a server recovers quickly once descriptors free up, while a
    /// retry costs well under 0.1% of a core.
    public static let acceptBackoff: Duration = .milliseconds(100)

    /// The backlog used when none is given: `SOMAXCONN` (the kernel caps it at `net.core.somaxconn`).
    public static let defaultBacklog = CInt(SOMAXCONN)

    init(handle: SocketHandle) {
        self.handle = handle
    }

    deinit {
        handle.close()
    }

    /// Binds a listening socket to `address` (port 0 picks a free port; see ``localAddress``).
    ///
    /// - Parameters:
    ///   - address: where to listen.
    ///   - backlog: the accept queue length.
    ///   - reusePort: sets `SO_REUSEPORT`, so several listeners (e.g. one per thread) can bind the
    ///     same address and the kernel spreads connections over them.
    public static func bind(
        _ address: SocketAddress, backlog: CInt = TCPListener.defaultBacklog, reusePort: Bool = false
    ) throws(IOError) -> TCPListener {
        let handle = try SocketHandle(family: address.protocolFamily, type: CInt(SOCK_STREAM.rawValue))
        let listener = TCPListener(handle: handle)
        try listener.bindAndListen(address, backlog: backlog, reusePort: reusePort)
        return listener
    }

    /// Sets `SO_REUSEADDR` (and `SO_REUSEPORT`), binds and listens: every `bind` form's last step.
    func bindAndListen(_ address: SocketAddress, backlog: CInt, reusePort: Bool) throws(IOError) {
        try handle.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, CInt(1), "setsockopt(SO_REUSEADDR)")
        if reusePort {
            try handle.setOption(level: SOL_SOCKET, name: SO_REUSEPORT, CInt(1), "setsockopt(SO_REUSEPORT)")
        }
        _ = try handle.withFD("bind") { (fd) throws(IOError) in
            _ = try syscall("bind", describedAs: "bind to \(address)") { address.withSockAddr { Glibc.bind(fd, $0, $1) } }
            _ = try syscall("listen", describedAs: "listen on \(address)") { Glibc.listen(fd, backlog) }
        }
    }

    /// Waits for the next connection.
    ///
    /// Several tasks may accept on one listener at once (several accept loops): they take turns
    /// in FIFO order, and each connection goes to exactly one of them.
    ///
    /// - Throws: `IOError` with `EBADF` ("the socket is closed", operation `accept`) if the listener
    ///   is closed, before or while this waits (``connections`` ends instead); `CancellationError`
    ///   if the task is cancelled while waiting; `IOError` with `ECANCELED` if the loop it waits on
    ///   shut down; other accept(2) errors that concern the listener itself.
    nonisolated(nonsending)
    public func accept() async throws -> TCPStream {
        TCPStream(handle: try await handle.acceptConnection { backoffs.wrappingAdd(1, ordering: .relaxed) })
    }

    /// ``accept()`` for ``connections``: `nil` instead of the error when the accept failed because
    /// the listener was closed locally (every failure after a local close is a consequence of it:
    /// `EBADF`, or the waiter failed by the close). Cancellation is still thrown.
    nonisolated(nonsending)
    func acceptUnlessClosed() async throws -> TCPStream? {
        do {
            return try await accept()
        } catch is CancellationError {
            throw CancellationError()
        } catch where handle.isClosed {
            return nil
        }
    }

    /// What an accept does after accept(2) failed with an errno.
    enum AcceptErrorAction: Equatable {
        /// Try accept(2) again at once: the error concerned one queued connection, which the
        /// failed call consumed; the next one may be fine.
        case retry
        /// Wait ``acceptBackoff`` and try again: descriptors or memory ran out.
        case backOff
        /// The listener itself failed (closed, not listening): `accept()` throws it.
        case fail
    }

    /// Classifies an accept(2) errno; the one place both listeners' accepts decide.
    ///
    /// Retried at once, so that one bad connection never ends a server's `connections`:
    /// - `ECONNABORTED`: a client that gave up while queued;
    /// - `EPERM`: firewall rules forbade the connection;
    /// - `EPROTO`, `ENETDOWN`, `ENOPROTOOPT`, `EHOSTDOWN`, `ENONET`, `EHOSTUNREACH`, `EOPNOTSUPP`,
    ///   `ENETUNREACH`: accept(2)'s manual says Linux passes the network errors already pending on
    ///   the new socket to accept, and that these must be treated like `EAGAIN`, by retrying.
    ///   (`EOPNOTSUPP` also means "not a stream socket", which a listener here never is.)
    static func acceptErrorAction(_ errno: Errno) -> AcceptErrorAction {
        switch errno {
        case .connectionAbort, .notPermitted, .protocolError, .networkDown, .protocolNotAvailable, .hostIsDown,
            .noRouteToHost, .notSupportedOnSocket, .networkUnreachable:
            return .retry
        case Errno(rawValue: ENONET):  // "machine is not on the network": swift-system has no name for it
            return .retry
        case .tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory:
            return .backOff
        default:
            return .fail
        }
    }

    /// How many times ``accept()`` backed off because descriptors or memory ran out.
    public var acceptBackoffCount: Int { backoffs.load(ordering: .relaxed) }

    /// The incoming connections, as an `AsyncSequence`: each iteration is an ``accept()``.
    ///
    /// The sequence **ends** (`next()` returns `nil`) once the listener is closed locally with
    /// ``close()``, also when that happens while a `next()` is suspended waiting for a connection:
    /// so `for try await connection in listener.connections { ... }` simply finishes on a
    /// graceful shutdown, with no error to catch. A connection accepted before the close was seen
    /// is still returned. Any other failure of the accept is thrown (`IOError` naming `accept`);
    /// a cancelled task's `next()` throws `CancellationError`, even if the listener is closed too.
    public var connections: Connections { Connections(listener: self) }

    /// An `AsyncSequence` of accepted connections.
    public struct Connections: AsyncSequence, Sendable {
        let listener: TCPListener

        public func makeAsyncIterator() -> Iterator { Iterator(listener: listener) }

        public struct Iterator: AsyncIteratorProtocol {
            let listener: TCPListener

            /// The next accepted connection, or `nil` once the listener is closed.
            nonisolated(nonsending)
            public mutating func next() async throws -> TCPStream? {
                try await listener.acceptUnlessClosed()
            }

            /// The next accepted connection, or `nil` once the listener is closed.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> TCPStream? {
                try await listener.acceptUnlessClosed()
            }
        }
    }

    /// The bound address (with the port the kernel chose for port 0).
    public var localAddress: SocketAddress {
        get throws(IOError) { try handle.address("getsockname") { getsockname($0, $1, $2) } }
    }

    /// Stops listening. A pending ``accept()``, and every later one, throws `IOError` with `EBADF`
    /// ("the socket is closed", operation `accept`); ``connections`` ends instead (returns `nil`).
    /// Idempotent; any thread.
    public func close() {
        handle.close()
    }
}
