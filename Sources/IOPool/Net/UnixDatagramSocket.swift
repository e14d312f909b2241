import Glibc
import SystemPackage

// A Unix-domain datagram socket (tokio's UnixDatagram): `UDPSocket`'s semantics on a
// `UnixSocketAddress`, on the same `SocketHandle` core.
//
// - A send is all or nothing, as for UDP: `EMSGSIZE` when the datagram exceeds the send buffer
//   (Unix datagrams are limited by SO_SNDBUF, about 208 KiB by default, not by a protocol
//   maximum), `EAGAIN` (wait for writability, send again) when the socket's send buffer or the
//   receiver's queue is full.
// - A receive takes one datagram with `recvmsg(MSG_TRUNC)` and reports truncation from
//   `msg_flags`: the rest of a datagram longer than the buffer is discarded by the kernel, and the
//   caller is told. Never `.drained`: one datagram says nothing about what else is queued.
// - Senders may be unnamed (an unbound socket, one end of a `socketpair`): the sender is then
//   `nil`, and cannot be answered.
// - Unlike UDP there is no ICMP: a send to a path where nothing is bound fails at once
//   (`ECONNREFUSED`, or `ENOENT` when no file exists), and a connected socket whose peer closed
//   fails its sends with `ECONNREFUSED`.

/// A Unix-domain datagram socket: sends and receives whole datagrams over a path or an abstract
/// name, reliably and in order (unlike UDP, the kernel never drops a Unix datagram: a full
/// receiver makes the sender wait).
///
/// ```swift
/// let server = try UnixDatagramSocket.bind(UnixSocketAddress(path: "/run/app.dgram"), removingExistingFile: true)
/// let client = try UnixDatagramSocket.bind(UnixSocketAddress(abstract: "app-client"))
/// try await client.send(Array("ping".utf8), to: server.localAddress!)
/// let (request, sender, _) = try await server.receive()
/// if let sender { try await server.send(request, to: sender) }   // nil: an unnamed sender
///
/// let (a, b) = try UnixDatagramSocket.pair()                       // connected, no address
/// ```
///
/// Concurrent use, cancellation and closing are as on ``UDPSocket``: any number of tasks may send
/// and receive at once, taking turns in FIFO order per direction, one datagram each; a cancelled
/// send or receive throws `CancellationError` and leaves the socket usable; ``close()`` (or the
/// last reference) fails pending operations with `EBADF`. It works on both pools and off-pool.
///
/// Waiting to send: Linux signals a sender that waits on a full receiver only when one of the
/// sender's own queued datagrams is received, so a socket waits reliably on a receiver it alone
/// fills (a ``connect(to:)``ed pair, the common case), but may wait until its next send
/// otherwise; bound such sends with a timeout.
public final class UnixDatagramSocket: Sendable {
    let handle: SocketHandle

    init(handle: SocketHandle) {
        self.handle = handle
    }

    deinit {
        handle.close()
    }

    // MARK: Opening

    /// Binds a datagram socket to `address`: a path (creating its socket file) or an abstract name.
    ///
    /// - Parameters:
    ///   - address: a path or an abstract name.
    ///   - removingExistingFile: if `true` and a **socket** file exists at the path, remove
    ///     it first (see ``UnixListener/bind(_:backlog:removingExistingFile:)``). ``close()`` leaves
    ///     the file in place.
    /// - Throws: ``IOError`` with the operation `"bind to <address>"`: `EADDRINUSE` if a file
    ///   exists at the path (or the abstract name is taken), `ENOENT` or `EACCES` for its directory.
    public static func bind(_ address: UnixSocketAddress, removingExistingFile: Bool = false) throws(IOError) -> UnixDatagramSocket {
        if removingExistingFile, let path = address.path {
            try UnixListener.removeSocketFile(at: path)
        }
        let socket = try unbound()
        _ = try socket.handle.withFD("bind") { (fd) throws(IOError) in
            try syscall("bind", describedAs: "bind to \(address)") { address.withSockAddr { Glibc.bind(fd, $0, $1) } }
        }
        return socket
    }

    /// An unbound datagram socket: it can send (to a bound socket, which sees an unnamed sender)
    /// and, once ``connect(to:)``ed, receive from its peer, but nobody can send to it by address.
    public static func unbound() throws(IOError) -> UnixDatagramSocket {
        UnixDatagramSocket(handle: try SocketHandle(family: AF_UNIX, type: CInt(SOCK_DGRAM.rawValue)))
    }

    /// A connected pair of unnamed datagram sockets (`socketpair(2)`): what one sends, the other
    /// receives, datagram by datagram.
    public static func pair() throws(IOError) -> (UnixDatagramSocket, UnixDatagramSocket) {
        var fds: [CInt] = [-1, -1]
        _ = try syscall("socketpair") {
            socketpair(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        return (
            UnixDatagramSocket(handle: SocketHandle(fd: fds[0], isStream: false)),
            UnixDatagramSocket(handle: SocketHandle(fd: fds[1], isStream: false))
        )
    }

    /// Takes ownership of a Unix datagram socket made elsewhere (systemd's `ListenDatagram=/path`);
    /// throws as ``TCPStream/init(adopting:)``, with `EPROTOTYPE` if it is not a datagram socket
    /// and `EAFNOSUPPORT` if it is not `AF_UNIX`.
    public convenience init(adopting fd: CInt) throws(IOError) {
        self.init(handle: try SocketHandle.adopting(fd, type: CInt(SOCK_DGRAM.rawValue), families: [AF_UNIX], listening: false, what: "a Unix datagram socket"))
    }

    /// Sets the default peer (`connect(2)`): ``send(_:)-(UnsafeRawBufferPointer)`` sends there and
    /// only datagrams from there are received. Never waits.
    ///
    /// - Throws: ``IOError`` with the operation `"connect to <address>"`: `ENOENT` if nothing
    ///   exists at the path, `ECONNREFUSED` if nothing is bound there.
    public func connect(to address: UnixSocketAddress) throws(IOError) {
        _ = try handle.withFD("connect") { (fd) throws(IOError) in
            try syscall("connect", describedAs: "connect to \(address)") { address.withSockAddr { Glibc.connect(fd, $0, $1) } }
        }
    }

    // MARK: Sending

    /// Sends `buffer` as one datagram to `address`, whole or not at all, waiting while the send
    /// buffer or the receiver's queue is full (see the type's notes). `buffer` must stay valid
    /// until the call returns; an empty buffer sends an empty datagram.
    ///
    /// - Throws: ``IOError`` with the operation `"send to <address>"`: `EMSGSIZE` if the datagram
    ///   is larger than the send buffer (``sendBufferSize``), `ENOENT` if nothing exists at the
    ///   path, `ECONNREFUSED` if nothing is bound there, `EPERM` if `address` is connected to
    ///   another socket.
    nonisolated(nonsending)
    public func send(_ buffer: UnsafeRawBufferPointer, to address: UnixSocketAddress) async throws {
        try await sendDatagram(buffer, to: address)
    }

    /// Sends `bytes` as one datagram to `address`; see ``send(_:to:)-(UnsafeRawBufferPointer,_)``.
    nonisolated(nonsending)
    public func send<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes, to address: UnixSocketAddress) async throws {
        try await sendBytes(bytes, to: address)
    }

    /// Sends `buffer` as one datagram to the connected peer (``connect(to:)``, or the other end of
    /// a ``pair()``).
    ///
    /// - Throws: ``IOError``: `ENOTCONN` if the socket is not connected; `ECONNREFUSED` once the
    ///   peer has closed; as ``send(_:to:)-(UnsafeRawBufferPointer,_)`` otherwise.
    nonisolated(nonsending)
    public func send(_ buffer: UnsafeRawBufferPointer) async throws {
        try await sendDatagram(buffer, to: nil)
    }

    /// Sends `bytes` as one datagram to the connected peer; see ``send(_:)-(UnsafeRawBufferPointer)``.
    nonisolated(nonsending)
    public func send<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes) async throws {
        try await sendBytes(bytes, to: nil)
    }

    nonisolated(nonsending)
    private func sendBytes<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes, to address: UnixSocketAddress?) async throws {
        guard bytes.withContiguousStorageIfAvailable({ _ in () }) != nil else {
            return try await sendBytes(Array(bytes), to: address)
        }
        try await handle.perform(.write, "send") { (fd) throws(IOError) -> IOAttempt<Void> in
            // Each attempt takes the pointer anew: it never crosses a suspension.
            try bytes.withContiguousStorageIfAvailable { storage in
                Result { () throws(IOError) in try Self.sendAttempt(fd, UnsafeRawBufferPointer(storage), to: address) }
            }!.get()
        }
    }

    nonisolated(nonsending)
    private func sendDatagram(_ buffer: UnsafeRawBufferPointer, to address: UnixSocketAddress?) async throws {
        try await handle.perform(.write, "send") { (fd) throws(IOError) -> IOAttempt<Void> in
            try Self.sendAttempt(fd, buffer, to: address)
        }
    }

    private static func sendAttempt(_ fd: CInt, _ buffer: UnsafeRawBufferPointer, to address: UnixSocketAddress?) throws(IOError) -> IOAttempt<Void> {
        let flags = CInt(MSG_NOSIGNAL)
        let outcome = rawSyscall("sendto") {
            if let address {
                return address.withSockAddr { Glibc.sendto(fd, buffer.baseAddress, buffer.count, flags, $0, $1) }
            }
            return Glibc.send(fd, buffer.baseAddress, buffer.count, flags)
        }
        let operation = address.map { "send to \($0)" } ?? "send"
        switch outcome {
        case .done(let count):
            guard count == buffer.count else {
                throw IOError(
                    errno: .ioError, operation: operation,
                    detail: "the kernel took \(count) of the datagram's \(buffer.count) bytes; a datagram is sent whole or not at all")
            }
            return .complete(())
        case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
            return .wouldBlock
        case .failed(let errno) where errno == .messageTooLong:
            throw IOError(errno: errno, operation: operation, detail: "the datagram of \(buffer.count) bytes exceeds the socket's send buffer (SO_SNDBUF)")
        case .failed(let errno):
            throw IOError(errno: errno, operation: operation)
        }
    }

    // MARK: Receiving

    /// Receives one datagram into `buffer`; returns how many bytes were stored, who sent it
    /// (`nil` for an unnamed sender) and whether it was truncated.
    ///
    /// Truncation: a datagram longer than `buffer` fills it, the kernel discards the rest (the
    /// next receive gets the next datagram), and `truncated` is `true`. `count` is 0 for an
    /// empty datagram; there is no end of stream. `buffer` must stay valid until the call returns.
    ///
    /// - Throws: ``IOError``; `EBADF` once closed; `CancellationError` if cancelled while waiting
    ///   (nothing is received).
    nonisolated(nonsending)
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer
    ) async throws -> (count: Int, sender: UnixSocketAddress?, truncated: Bool) {
        try await handle.perform(.read, "receive") {
            (fd) throws(IOError) -> IOAttempt<(count: Int, sender: UnixSocketAddress?, truncated: Bool)> in
            var address = sockaddr_un()
            var header = msghdr()
            var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
            let outcome = withUnsafeMutablePointer(to: &address) { addressPointer in
                withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    header.msg_name = UnsafeMutableRawPointer(addressPointer)
                    header.msg_namelen = socklen_t(MemoryLayout<sockaddr_un>.size)
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    return rawSyscall("recvmsg") { Glibc.recvmsg(fd, &header, CInt(MSG_TRUNC)) }
                }
            }
            switch outcome {
            case .done(let size):
                let truncated = header.msg_flags & CInt(MSG_TRUNC) != 0 || size > buffer.count
                return .complete((min(size, buffer.count), UnixSocketAddress(sockaddr: address, length: header.msg_namelen), truncated))
            case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
                return .wouldBlock
            case .failed(let errno):
                throw IOError(errno: errno, operation: "receive")
            }
        }
    }

    /// Receives one datagram of up to `maxBytes` bytes (default 65,536); returns its bytes, its
    /// sender and whether it was truncated to `maxBytes` (see ``receive(into:)``). A negative
    /// `maxBytes` throws ``IOError`` with `EINVAL`.
    nonisolated(nonsending)
    public func receive(maxBytes: Int = 65536) async throws -> (bytes: [UInt8], sender: UnixSocketAddress?, truncated: Bool) {
        guard maxBytes >= 0 else {
            throw IOError.invalidArgument("receive(maxBytes: \(maxBytes))", "maxBytes must not be negative")
        }
        // Array's own buffer cannot be borrowed across a suspension, so receive into a scratch buffer.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxBytes, 1), alignment: 1)
        defer { buffer.deallocate() }
        let (count, sender, truncated) = try await receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<maxBytes]))
        return (Array(buffer[..<count]), sender, truncated)
    }

    // MARK: Options, addresses, close

    /// Sets the kernel's send buffer (`SO_SNDBUF`), which also caps the largest datagram; see
    /// ``StreamSocket/setSendBufferSize(_:)`` for the doubling and limits.
    public func setSendBufferSize(_ bytes: Int) throws(IOError) {
        try handle.setBufferSize(SO_SNDBUF, bytes, "setsockopt(SO_SNDBUF)")
    }

    /// The send buffer size in bytes (`SO_SNDBUF`), as the kernel reports it (doubled).
    public var sendBufferSize: Int {
        get throws(IOError) { try handle.bufferSize(SO_SNDBUF, "getsockopt(SO_SNDBUF)") }
    }

    /// Sets the kernel's receive buffer (`SO_RCVBUF`); see ``StreamSocket/setSendBufferSize(_:)``.
    public func setReceiveBufferSize(_ bytes: Int) throws(IOError) {
        try handle.setBufferSize(SO_RCVBUF, bytes, "setsockopt(SO_RCVBUF)")
    }

    /// The receive buffer size in bytes (`SO_RCVBUF`), as the kernel reports it (doubled).
    public var receiveBufferSize: Int {
        get throws(IOError) { try handle.bufferSize(SO_RCVBUF, "getsockopt(SO_RCVBUF)") }
    }

    /// The bound address; `nil` for an unbound socket or one end of a ``pair()``.
    public var localAddress: UnixSocketAddress? {
        get throws(IOError) { try handle.unixAddress("getsockname") { getsockname($0, $1, $2) } }
    }

    /// The connected peer's address; `nil` for an unnamed peer.
    ///
    /// - Throws: ``IOError`` with `ENOTCONN` if the socket is not connected.
    public var remoteAddress: UnixSocketAddress? {
        get throws(IOError) { try handle.unixAddress("getpeername") { getpeername($0, $1, $2) } }
    }

    /// Lends the socket's descriptor to `body`; see ``StreamSocket/withUnsafeFileDescriptor(_:)``.
    public func withUnsafeFileDescriptor<Result>(_ body: (CInt) throws -> Result) throws -> Result {
        try handle.withBorrowedDescriptor(body)
    }

    /// Closes the socket. Pending and later operations fail with `EBADF`. Idempotent; never
    /// blocks. Dropping the last reference closes it too. A bound path's file stays.
    public func close() {
        handle.close()
    }
}
