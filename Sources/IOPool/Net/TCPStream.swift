import Glibc
import SystemPackage

/// A TCP connection.
///
/// Every operation is non-blocking underneath and `async` on top; none blocks a thread. One task
/// may read while another writes (one reader and one writer at a time). Operations that suspend
/// are cancellation-safe: a cancelled read or write throws `CancellationError` and leaves the
/// stream usable.
///
/// End of stream: ``read(into:)`` returns 0 once the peer has shut down its write side (or closed)
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
/// (``close()``, or dropping the last reference) fails pending operations with `EBADF`.
public final class TCPStream: AsyncByteReader, AsyncByteWriter, Sendable {
    let handle: SocketHandle

    init(handle: SocketHandle) {
        self.handle = handle
    }

    deinit {
        handle.close()
    }

    /// Connects to `address`.
    public static func connect(to address: SocketAddress) async throws -> TCPStream {
        let handle = try SocketHandle(family: address.protocolFamily, type: CInt(SOCK_STREAM.rawValue))
        let stream = TCPStream(handle: handle)
        let started = try handle.withFD("connect") { (fd) throws(IOError) -> Bool in
            switch rawSyscall("connect", { address.withSockAddr { Glibc.connect(fd, $0, $1) } }) {
            case .done: return true
            case .failed(let errno) where errno == .nowInProgress: return false
            case .failed(let errno): throw IOError(errno: errno, operation: "connect to \(address)")
            }
        }
        if started { return stream }
        // In progress: writability signals the outcome, SO_ERROR says which.
        try await handle.perform(.write, "connect") { (fd) throws(IOError) -> IOAttempt<Void> in
            var error: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            _ = try syscall("getsockopt(SO_ERROR)") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) }
            if error != 0 { throw IOError(errno: Errno(rawValue: error), operation: "connect to \(address)") }
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connected = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) }
            }
            return connected == 0 ? .complete(()) : .wouldBlock
        }
        return stream
    }

    // MARK: Reading

    /// Reads up to `buffer.count` bytes into `buffer`; returns 0 at end of stream.
    ///
    /// `buffer` must stay valid until the call returns.
    nonisolated(nonsending)
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        precondition(buffer.count > 0, "read(into:) needs a non-empty buffer")
        return try await handle.perform(.read, "read") { (fd) throws(IOError) -> IOAttempt<Int> in
            switch try nonBlockingSyscall("read", { Glibc.read(fd, buffer.baseAddress, buffer.count) }) {
            case .wouldBlock:
                return .wouldBlock
            case .done(let count):
                // A short (non-empty) read means the socket buffer was drained (edge-triggered epoll).
                return count > 0 && count < buffer.count ? .drained(count) : .complete(count)
            }
        }
    }

    /// Reads what is available, up to `maxBytes`; returns `[]` at end of stream.
    nonisolated(nonsending)
    public func read(maxBytes: Int = 16384) async throws -> [UInt8] {
        precondition(maxBytes > 0, "read(maxBytes:) needs maxBytes > 0")
        // Array's own buffer cannot be borrowed across a suspension, so read into a scratch buffer.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxBytes, alignment: 1)
        defer { buffer.deallocate() }
        let count = try await read(into: buffer)
        return Array(buffer[..<count])
    }

    // MARK: Writing

    /// Writes every byte of `buffer`, suspending while the socket buffer is full (backpressure:
    /// nothing is buffered in user space).
    nonisolated(nonsending)
    public func write(_ buffer: UnsafeRawBufferPointer) async throws {
        var offset = try writeWithoutWaiting(buffer)
        while offset < buffer.count {
            offset += try await handle.perform(.write, "write") { (fd) throws(IOError) -> IOAttempt<Int> in
                try TCPStream.sendAttempt(fd, UnsafeRawBufferPointer(rebasing: buffer[offset...]))
            }
        }
    }

    /// Writes what the socket buffer takes now, without suspending; returns the byte count (0 if
    /// the buffer is full).
    func writeWithoutWaiting(_ buffer: UnsafeRawBufferPointer) throws(IOError) -> Int {
        guard !buffer.isEmpty else { return 0 }
        return try handle.attemptNow(.write, "write") { (fd) throws(IOError) in try TCPStream.sendAttempt(fd, buffer) } ?? 0
    }

    private static func sendAttempt(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) throws(IOError) -> IOAttempt<Int> {
        switch try nonBlockingSyscall("write", { Glibc.send(fd, buffer.baseAddress, buffer.count, CInt(MSG_NOSIGNAL)) }) {
        case .wouldBlock: return .wouldBlock
        case .done(let count): return count < buffer.count ? .drained(count) : .complete(count)
        }
    }

    /// Writes every byte of `bytes` (e.g. `[UInt8]`, `ArraySlice<UInt8>`, `"text".utf8`).
    nonisolated(nonsending)
    public func write<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes) async throws {
        let contiguous = bytes.withContiguousStorageIfAvailable { _ in true } ?? false
        if !contiguous { return try await write(Array(bytes)) }
        var offset = 0
        let total = bytes.count
        while offset < total {
            offset += try await handle.perform(.write, "write") { (fd) throws(IOError) -> IOAttempt<Int> in
                let remaining = total - offset
                // Each attempt takes the pointer anew: it never crosses a suspension.
                let outcome = bytes.withContiguousStorageIfAvailable { storage in
                    Result { () throws(IOError) in
                        try nonBlockingSyscall("write") {
                            send(fd, UnsafeRawPointer(storage.baseAddress!) + offset, remaining, CInt(MSG_NOSIGNAL))
                        }
                    }
                }!
                switch try outcome.get() {
                case .wouldBlock: return .wouldBlock
                case .done(let count): return count < remaining ? .drained(count) : .complete(count)
                }
            }
        }
    }

    // MARK: Shutdown, close, options

    /// Which side of the connection ``shutdown(_:)`` closes.
    public enum ShutdownDirection: Sendable {
        /// No more reads: reads return 0.
        case read
        /// Half-close: the peer reads end of stream; we can still read its data.
        case write
        /// Both.
        case both
    }

    /// Shuts down one or both directions without closing the socket (`shutdown(2)`).
    public func shutdown(_ direction: ShutdownDirection) throws(IOError) {
        let how: CInt
        switch direction {
        case .read: how = CInt(SHUT_RD)
        case .write: how = CInt(SHUT_WR)
        case .both: how = CInt(SHUT_RDWR)
        }
        _ = try handle.withFD("shutdown") { (fd) throws(IOError) in try syscall("shutdown") { Glibc.shutdown(fd, how) } }
    }

    /// Closes the connection. Pending and later operations fail with `EBADF`. Idempotent; never
    /// blocks. Dropping the last reference closes it too.
    public func close() {
        handle.close()
    }

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
