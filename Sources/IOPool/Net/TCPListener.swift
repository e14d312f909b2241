import CIOPoolShims
import Glibc
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
/// accepting does not fail ``StreamListener/accept()`` and does not spin: it waits ``acceptBackoff`` and tries
/// again, so the listener keeps serving once descriptors free up. Errors that concern one queued
/// connection (`ECONNABORTED`, a client that gave up while queued; `EPERM`; and the network errors
/// accept(2) says to retry like `EAGAIN`, such as `ENETDOWN` or `EHOSTUNREACH`) skip that
/// connection: ``StreamListener/accept()`` and ``StreamListener/connections`` go on with the next one.
///
/// Accepting and closing are ``StreamListener``'s, shared with ``UnixListener``.
public final class TCPListener: StreamListener<TCPStream>, @unchecked Sendable {  // Sendable: see StreamListener.swift
    /// Pause after an accept failed for lack of descriptors or memory. NIO's AcceptBackoffHandler
    /// waits 1 s; we wait 100 ms so a server recovers quickly once descriptors free up, while a
    /// retry costs well under 0.1% of a core.
    public static let acceptBackoff: Duration = .milliseconds(100)

    /// The backlog used when none is given: `SOMAXCONN` (the kernel caps it at `net.core.somaxconn`).
    public static let defaultBacklog = CInt(SOMAXCONN)

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

    /// The bound address (with the port the kernel chose for port 0).
    public var localAddress: SocketAddress {
        get throws(IOError) { try handle.address("getsockname") { getsockname($0, $1, $2) } }
    }
}
