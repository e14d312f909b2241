import Glibc
import SystemPackage

/// A TCP connection.
///
/// Every operation is non-blocking underneath and `async` on top; none blocks a thread. Operations
/// that suspend are cancellation-safe: a cancelled read or write throws `CancellationError` and
/// leaves the stream usable.
///
/// Concurrent use: any number of tasks may read and write one stream at once (an actor that
/// broadcasts to its clients by awaiting each `write`, reentered while one client does not read, is
/// fine). Reads and writes are separate directions; within one, calls take turns in FIFO order:
/// - a ``StreamSocket/write(_:)-(UnsafeRawBufferPointer)`` writes all its bytes before the next queued write
///   starts, so whole writes never interleave;
/// - each ``StreamSocket/read(into:)-(UnsafeMutableRawBufferPointer)`` is served whole (one read of what is there) before the next queued one.
///
/// A queued call that is cancelled throws `CancellationError` without costing the others their
/// turn; ``StreamSocket/close()`` fails the queued calls, like the running one, with `EBADF`.
///
/// End of stream: ``StreamSocket/read(into:)-(UnsafeMutableRawBufferPointer)`` returns 0 once the peer has shut down its write side (or closed)
/// and everything it sent has been read. Writes to a peer that reset the connection throw an
/// ``IOError`` (`ECONNRESET` or `EPIPE`); they never raise `SIGPIPE`.
///
/// ```swift
/// let stream = try await TCPStream.connect(to: SocketAddress("127.0.0.1:8080"))
/// try await stream.write(Array("hello".utf8))
/// try stream.shutdown(.write)            // half-close: the peer reads EOF
/// let reply = try await stream.read()    // [] at EOF
/// stream.close()
/// ```
///
/// The socket registers with the reactor of the ``IOThread`` that first awaits it. Closing it
/// (``StreamSocket/close()``, or dropping the last reference) fails pending operations with `EBADF`.
///
/// Reading, writing, ``StreamSocket/shutdown(_:)`` and ``StreamSocket/close()`` are
/// ``StreamSocket``'s, shared with ``UnixStream``.
public final class TCPStream: StreamSocket, @unchecked Sendable {  // Sendable: see StreamSocket.swift
    /// Connects to `address`.
    ///
    /// Waits as long as the kernel does (about two minutes of SYN retries for an address that
    /// never answers); ``connect(to:from:timeout:)`` bounds the wait and binds the local end.
    ///
    /// - Throws: ``IOError`` with the operation `"connect to <address>"`: `ECONNREFUSED` when
    ///   nothing listens there, `ETIMEDOUT` when the kernel gave up, `ENETUNREACH` and friends;
    ///   `CancellationError` if the task is cancelled while waiting (the socket is closed).
    nonisolated(nonsending)
    public static func connect(to address: SocketAddress) async throws -> TCPStream {
        try await connectSocket(to: address, from: nil)
    }

    // MARK: Options, addresses

    /// Enables or disables Nagle's algorithm (`TCP_NODELAY`).
    public func setNoDelay(_ enabled: Bool) throws(IOError) {
        try handle.setOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, CInt(enabled ? 1 : 0), "setsockopt(TCP_NODELAY)")
    }

    /// The local end's address.
    public var localAddress: SocketAddress {
        get throws(IOError) { try handle.address("getsockname") { getsockname($0, $1, $2) } }
    }

    /// The peer's address.
    public var remoteAddress: SocketAddress {
        get throws(IOError) { try handle.address("getpeername") { getpeername($0, $1, $2) } }
    }
}
