import Glibc
import SystemPackage

// Design notes.
//
// A datagram socket is a `SocketHandle` like TCP's, with datagram semantics on top:
//
// - A send is all or nothing. `sendto(2)` on a UDP socket either queues the whole datagram or
//   fails (`EMSGSIZE` when it is too large, `EAGAIN` when the send buffer is full, in which case
//   nothing was sent and we wait for writability and send it again). A short count would break
//   the kernel's contract; it is reported as an `IOError` (`EIO`) rather than trapped, because it
//   would not be our bug.
// - A receive takes exactly one datagram. It is called with `MSG_TRUNC`, so the kernel returns the
//   datagram's real length even when the buffer was smaller; the caller learns that the datagram
//   was truncated (the rest is discarded by the kernel, as for every datagram socket). A receive
//   never reports `.drained`: one datagram says nothing about whether more are queued. (A batch
//   receive that got fewer datagrams than it had room for does: the queue was empty.)
// - Batches (UDPSocket+Batch.swift): `recvmmsg`/`sendmmsg` through the shims, for up to 64
//   datagrams per call, measured 1.3-1.6x faster per datagram than one call each.
// - Asynchronous errors (ICMP port unreachable answering an earlier datagram of a *connected*
//   socket) are kept by the kernel in `sk_err` and returned, once, by the next send or receive:
//   they surface as that operation's `IOError` (`ECONNREFUSED`, and so on).
//
// Readiness after an error: a datagram socket's registration does not make readiness sticky on
// EPOLLERR (see `Registration`), so a socket that got ECONNREFUSED waits normally afterwards.

/// A UDP socket: sends and receives whole datagrams.
///
/// Every operation is non-blocking underneath and `async` on top; none blocks a thread. Any
/// number of tasks may send and receive at once: sends take turns in FIFO order, one datagram
/// (or one batch call) each, and so do receives. Operations that suspend are cancellation-safe: a
/// cancelled send or receive throws `CancellationError` and leaves the socket usable, and a
/// cancelled queued one costs the others nothing.
///
/// ```swift
/// let server = try UDPSocket.bind(SocketAddress("127.0.0.1:5353"))
/// let (request, sender, _) = try await server.receive()
/// try await server.send(request, to: sender)          // echo it back
///
/// let client = try UDPSocket.unbound()                  // the kernel picks a port on first send
/// try client.connect(to: SocketAddress("127.0.0.1:5353"))
/// try await client.send(Array("ping".utf8))
/// let reply = try await client.receive()
/// ```
///
/// Datagrams are delivered whole or not at all, in no guaranteed order, and may be lost; a
/// datagram larger than the receive buffer is truncated (see ``receive(into:)-(UnsafeMutableRawBufferPointer)``).
///
/// A *connected* socket (``connect(to:)``) sends to its peer by default, receives only from it,
/// and learns from the kernel when nothing listens there: after a datagram to a closed port, the
/// next ``send(_:)-(UnsafeRawBufferPointer)`` or ``receive(into:)-(UnsafeMutableRawBufferPointer)`` throws an ``IOError`` with
/// `ECONNREFUSED` (the ICMP "port unreachable" that answered the datagram), and the socket keeps
/// working.
///
/// The socket registers with the reactor of the ``IOThread`` that first awaits it. Closing it
/// (``close()``, or dropping the last reference) fails pending operations with `EBADF`.
public final class UDPSocket: Sendable {
    let handle: SocketHandle

    init(handle: SocketHandle) {
        self.handle = handle
    }

    deinit {
        handle.close()
    }

    // MARK: Opening

    /// Binds a datagram socket to `address` (port 0 picks a free port; see ``localAddress``).
    ///
    /// - Parameters:
    ///   - address: the local address, e.g. `SocketAddress.loopbackIPv4(port: 0)` or
    ///     `SocketAddress.anyIPv6(port: 5353)`.
    ///   - reuseAddress: sets `SO_REUSEADDR`. For UDP on Linux this lets several sockets bind the
    ///     same address and port (each then gets multicast and broadcast datagrams; unicast ones
    ///     go to one of them), which is why it is off by default: two unrelated servers would
    ///     silently share a port.
    ///   - reusePort: sets `SO_REUSEPORT`, so that several sockets (e.g. one per thread; all of
    ///     the same user) can bind the same address and the kernel spreads the datagrams over
    ///     them by the sender's address.
    /// - Throws: ``IOError``, e.g. `EADDRINUSE`, or `EADDRNOTAVAIL` for an address that no
    ///   interface has.
    public static func bind(
        _ address: SocketAddress, reuseAddress: Bool = false, reusePort: Bool = false
    ) throws(IOError) -> UDPSocket {
        let handle = try SocketHandle(family: address.protocolFamily, type: CInt(SOCK_DGRAM.rawValue))
        let socket = UDPSocket(handle: handle)
        if reuseAddress {
            try handle.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, CInt(1), "setsockopt(SO_REUSEADDR)")
        }
        if reusePort {
            try handle.setOption(level: SOL_SOCKET, name: SO_REUSEPORT, CInt(1), "setsockopt(SO_REUSEPORT)")
        }
        _ = try handle.withFD("bind") { (fd) throws(IOError) in
            try syscall("bind", describedAs: "bind to \(address)") { address.withSockAddr { Glibc.bind(fd, $0, $1) } }
        }
        return socket
    }

    /// An unbound datagram socket of `family`: the kernel binds it to the wildcard address and a
    /// free port on its first send (or ``connect(to:)``). Use it for a client that does not care
    /// about its local port.
    public static func unbound(_ family: SocketAddress.Family = .ipv4) throws(IOError) -> UDPSocket {
        let protocolFamily: CInt
        switch family {
        case .ipv4: protocolFamily = AF_INET
        case .ipv6: protocolFamily = AF_INET6
        }
        return UDPSocket(handle: try SocketHandle(family: protocolFamily, type: CInt(SOCK_DGRAM.rawValue)))
    }

    /// Sets the default peer (`connect(2)`): ``send(_:)-(UnsafeRawBufferPointer)`` sends there,
    /// only datagrams from there are received, and ICMP errors for datagrams sent there are
    /// reported by the next send or receive (`ECONNREFUSED` when nothing listens).
    ///
    /// Nothing is sent; the call never waits. It may be called again to change the peer. An
    /// unbound socket is bound to a free port (and the local address that routes to `address`).
    public func connect(to address: SocketAddress) throws(IOError) {
        _ = try handle.withFD("connect") { (fd) throws(IOError) in
            try syscall("connect", describedAs: "connect to \(address)") {
                address.withSockAddr { Glibc.connect(fd, $0, $1) }
            }
        }
    }

    // MARK: Sending

    /// Sends `buffer` as one datagram to `address`.
    ///
    /// The datagram is sent whole or not at all; a full send buffer suspends the call until it
    /// can be sent. `buffer` must stay valid until the call returns. An empty buffer sends an
    /// empty datagram.
    ///
    /// - Throws: ``IOError``: `EMSGSIZE` if the datagram is larger than the protocol allows
    ///   (65,507 bytes of payload over IPv4), `EAFNOSUPPORT` for an address of the other family,
    ///   `ENETUNREACH` and friends; for a connected socket, also a pending asynchronous error
    ///   such as `ECONNREFUSED`.
    nonisolated(nonsending)
    public func send(_ buffer: UnsafeRawBufferPointer, to address: SocketAddress) async throws {
        try await sendDatagram(buffer, to: address)
    }

    /// Sends `bytes` as one datagram to `address` (e.g. `[UInt8]`, `ArraySlice<UInt8>`,
    /// `"text".utf8`). See ``send(_:to:)-(UnsafeRawBufferPointer,_)``.
    nonisolated(nonsending)
    public func send<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes, to address: SocketAddress) async throws {
        try await sendDatagram(bytes, to: address)
    }

    /// Sends `buffer` as one datagram to the peer set by ``connect(to:)``.
    ///
    /// - Throws: ``IOError``: `EDESTADDRREQ` if the socket is not connected; `ECONNREFUSED` if an
    ///   earlier datagram was refused (nothing listens at the peer's port); as
    ///   ``send(_:to:)-(UnsafeRawBufferPointer,_)`` otherwise.
    nonisolated(nonsending)
    public func send(_ buffer: UnsafeRawBufferPointer) async throws {
        try await sendDatagram(buffer, to: nil)
    }

    /// Sends `bytes` as one datagram to the peer set by ``connect(to:)``. See
    /// ``send(_:)-(UnsafeRawBufferPointer)``.
    nonisolated(nonsending)
    public func send<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes) async throws {
        try await sendDatagram(bytes, to: nil)
    }

    nonisolated(nonsending)
    private func sendDatagram(_ buffer: UnsafeRawBufferPointer, to address: SocketAddress?) async throws {
        try await waitingPerform(.write, "send") { (fd) throws(IOError) -> Void? in
            try UDPSocket.sendAttempt(fd, buffer, to: address)
        }
    }

    nonisolated(nonsending)
    private func sendDatagram<Bytes: Collection<UInt8> & Sendable>(
        _ bytes: Bytes, to address: SocketAddress?
    ) async throws {
        let contiguous = bytes.withContiguousStorageIfAvailable { _ in true } ?? false
        if !contiguous { return try await sendDatagram(Array(bytes), to: address) }
        try await waitingPerform(.write, "send") { (fd) throws(IOError) -> Void? in
            // Each attempt takes the pointer anew: it never crosses a suspension.
            try bytes.withContiguousStorageIfAvailable { storage in
                Result { () throws(IOError) in try UDPSocket.sendAttempt(fd, UnsafeRawBufferPointer(storage), to: address) }
            }!.get()
        }
    }

    /// One non-blocking `sendto`/`send`: `()` when sent, `nil` when it would block.
    private static func sendAttempt(
        _ fd: CInt, _ buffer: UnsafeRawBufferPointer, to address: SocketAddress?
    ) throws(IOError) -> Void? {
        let flags = CInt(MSG_NOSIGNAL)
        let outcome = rawSyscall("sendto") {
            if let address {
                return address.withSockAddr { Glibc.sendto(fd, buffer.baseAddress, buffer.count, flags, $0, $1) }
            }
            return Glibc.send(fd, buffer.baseAddress, buffer.count, flags)
        }
        switch outcome {
        case .done(let count):
            guard count == buffer.count else {
                throw IOError(
                    errno: .ioError, operation: sendDescription(address),
                    detail: "the kernel took \(count) of the datagram's \(buffer.count) bytes; a datagram is sent whole or not at all")
            }
            return ()
        case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
            return nil
        case .failed(let errno):
            throw IOError(errno: errno, operation: sendDescription(address), detail: asynchronousErrorDetail(errno))
        }
    }

    private static func sendDescription(_ address: SocketAddress?) -> String {
        address.map { "send to \($0)" } ?? "send"
    }

    // MARK: Receiving

    /// Receives one datagram into `buffer`; returns how many bytes were stored, who sent it, and
    /// whether it was truncated.
    ///
    /// Truncation: a datagram longer than `buffer` fills `buffer`, its remaining bytes are
    /// discarded by the kernel (the next receive gets the next datagram), and `truncated` is
    /// `true`. A buffer of 65,536 bytes never truncates a UDP datagram. `count` is 0 for an empty
    /// datagram; there is no end of stream.
    ///
    /// `buffer` must stay valid until the call returns. On a connected socket only datagrams from
    /// the peer arrive.
    ///
    /// - Throws: ``IOError``; on a connected socket `ECONNREFUSED` when an earlier datagram was
    ///   refused by the peer's host (nothing listens at its port); the socket keeps working.
    nonisolated(nonsending)
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer
    ) async throws -> (count: Int, sender: SocketAddress, truncated: Bool) {
        try await waitingPerform(.read, "receive") {
            (fd) throws(IOError) -> (count: Int, sender: SocketAddress, truncated: Bool)? in
            try UDPSocket.receiveAttempt(fd, buffer)
        }
    }

    /// Receives one datagram of up to `maxBytes` bytes; returns its bytes, who sent it, and
    /// whether it was truncated to `maxBytes` (see ``receive(into:)-(UnsafeMutableRawBufferPointer)``). The default, 65,536,
    /// holds any UDP datagram. A negative `maxBytes` throws ``IOError`` with `EINVAL`.
    nonisolated(nonsending)
    public func receive(maxBytes: Int = 65536) async throws -> (bytes: [UInt8], sender: SocketAddress, truncated: Bool) {
        guard maxBytes >= 0 else {
            throw IOError.invalidArgument("receive(maxBytes: \(maxBytes))", "maxBytes must not be negative")
        }
        // Array's own buffer cannot be borrowed across a suspension, so receive into a scratch buffer.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxBytes, alignment: 1)
        defer { buffer.deallocate() }
        let (count, sender, truncated) = try await receive(into: buffer)
        return (Array(buffer[..<count]), sender, truncated)
    }

    /// One non-blocking `recvfrom(MSG_TRUNC)`: the datagram's stored length, sender and truncation,
    /// or `nil` when nothing is queued.
    private static func receiveAttempt(
        _ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer
    ) throws(IOError) -> (count: Int, sender: SocketAddress, truncated: Bool)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let outcome = rawSyscall("recvfrom") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.recvfrom(fd, buffer.baseAddress, buffer.count, CInt(MSG_TRUNC), $0, &length)
                }
            }
        }
        switch outcome {
        case .done(let size):
            // With MSG_TRUNC, `size` is the datagram's real length, which may exceed the buffer.
            guard let sender = SocketAddress(storage: storage, length: length) else {
                throw IOError(
                    errno: .addressFamilyNotSupported, operation: "receive",
                    detail: "the sender's address has family \(storage.ss_family), length \(length)")
            }
            return (min(size, buffer.count), sender, size > buffer.count)
        case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
            return nil
        case .failed(let errno):
            throw IOError(errno: errno, operation: "receive", detail: asynchronousErrorDetail(errno))
        }
    }

    /// Says where an errno that the operation itself did not cause comes from.
    private static func asynchronousErrorDetail(_ errno: Errno) -> String? {
        switch errno {
        case .connectionRefused:
            return "an earlier datagram to the connected peer was refused (ICMP port unreachable): nothing listens at its port"
        default:
            return nil
        }
    }

    // MARK: Waiting

    /// `handle.perform` for attempts that return `nil` for "would block".
    nonisolated(nonsending)
    private func waitingPerform<Value>(
        _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> Value?
    ) async throws -> Value {
        try await handle.perform(interest, operation) { (fd) throws(IOError) -> IOAttempt<Value> in
            if let value = try attempt(fd) { return .complete(value) }
            return .wouldBlock
        }
    }

    // MARK: Options, addresses, close

    /// Enables or disables sending to broadcast addresses (`SO_BROADCAST`); without it a send to a
    /// broadcast address fails with `EACCES`.
    public func setBroadcast(_ enabled: Bool) throws(IOError) {
        try handle.setOption(level: SOL_SOCKET, name: SO_BROADCAST, CInt(enabled ? 1 : 0), "setsockopt(SO_BROADCAST)")
    }

    /// The local address (with the port the kernel chose for port 0). An unbound socket that has
    /// not sent yet reports the wildcard address and port 0.
    public var localAddress: SocketAddress {
        get throws(IOError) { try handle.address("getsockname") { getsockname($0, $1, $2) } }
    }

    /// The peer set by ``connect(to:)``.
    ///
    /// - Throws: ``IOError`` with `ENOTCONN` if the socket is not connected.
    public var remoteAddress: SocketAddress {
        get throws(IOError) { try handle.address("getpeername") { getpeername($0, $1, $2) } }
    }

    /// Closes the socket. Pending and later operations fail with `EBADF`. Idempotent; never
    /// blocks. Dropping the last reference closes it too.
    public func close() {
        handle.close()
    }
}
