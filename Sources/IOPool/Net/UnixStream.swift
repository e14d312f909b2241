import Glibc
import SystemPackage

/// A connected Unix-domain stream socket: ``TCPStream`` for a ``UnixSocketAddress``.
///
/// Reading, writing, half-close, cancellation and closing behave exactly as on a ``TCPStream``
/// (the same non-blocking core): ``StreamSocket/read(into:)-(UnsafeMutableRawBufferPointer)`` returns 0 at end of stream, writes never raise
/// `SIGPIPE` (they throw `EPIPE`), a cancelled read or write throws `CancellationError` and leaves
/// the stream usable, and ``StreamSocket/close()`` fails pending operations with `EBADF`. Concurrent use too:
/// any number of tasks may read and write at once; calls of one direction take turns in FIFO
/// order, each write written whole before the next and each read served whole (see ``TCPStream``).
///
/// ```swift
/// let stream = try await UnixStream.connect(to: UnixSocketAddress(path: "/run/myapp.sock"))
/// try await stream.write(Array("hello".utf8))
/// try stream.shutdown(.write)            // half-close: the peer reads EOF
/// let reply = try await stream.read()    // [] at EOF
/// stream.close()
///
/// let (a, b) = try UnixStream.pair()     // connected, no address (socketpair(2))
/// ```
///
/// Reading, writing, ``StreamSocket/shutdown(_:)`` and ``StreamSocket/close()`` are
/// ``StreamSocket``'s, shared with ``TCPStream``.
public final class UnixStream: StreamSocket, @unchecked Sendable {  // Sendable: see StreamSocket.swift
    /// Connects to the listener at `address`.
    ///
    /// A Unix-domain connect completes at once or fails at once; it never waits for the server to
    /// accept. With the listener's accept queue full it fails with `EAGAIN` (as in Go and tokio: the
    /// kernel offers no readiness event to wait for).
    ///
    /// - Throws: ``IOError`` with the operation `"connect to <address>"`: `ENOENT` if nothing exists
    ///   at the path, `ECONNREFUSED` if a socket file exists but nothing listens on it (or, for an
    ///   abstract name, nothing is bound to it), `EACCES` if the path's permissions forbid it.
    public static func connect(to address: UnixSocketAddress) async throws -> UnixStream {
        let stream = UnixStream(handle: try SocketHandle(family: AF_UNIX, type: CInt(SOCK_STREAM.rawValue)))
        _ = try stream.handle.withFD("connect") { (fd) throws(IOError) in
            switch rawSyscall("connect", { address.withSockAddr { Glibc.connect(fd, $0, $1) } }) {
            case .done:
                return
            case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
                throw IOError(errno: errno, operation: "connect to \(address)", detail: "the listener's accept queue is full")
            case .failed(let errno):
                throw IOError(errno: errno, operation: "connect to \(address)")
            }
        }
        return stream
    }

    /// A connected pair of unnamed streams (`socketpair(2)`): what one writes, the other reads.
    public static func pair() throws(IOError) -> (UnixStream, UnixStream) {
        var fds: [CInt] = [-1, -1]
        _ = try syscall("socketpair") {
            socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        return (UnixStream(handle: SocketHandle(fd: fds[0])), UnixStream(handle: SocketHandle(fd: fds[1])))
    }

    // MARK: Addresses

    /// The local end's address: `nil` if it is unnamed (a client, or one end of a ``pair()``). On a
    /// stream accepted by a ``UnixListener``, the listener's address.
    public var localAddress: UnixSocketAddress? {
        get throws(IOError) { try handle.unixAddress("getsockname") { getsockname($0, $1, $2) } }
    }

    /// The peer's address: the listener's address for a stream from ``connect(to:)``; `nil` for an
    /// unnamed peer (an accepted client, or the other end of a ``pair()``).
    public var remoteAddress: UnixSocketAddress? {
        get throws(IOError) { try handle.unixAddress("getpeername") { getpeername($0, $1, $2) } }
    }
}
