import Glibc
import SystemPackage

// Socket options: typed setters and getters over `SocketHandle.setOption`/`getOption` (the one
// place that calls setsockopt/getsockopt), and the escape hatch for everything else,
// `withUnsafeFileDescriptor`, which lends the descriptor for the duration of a closure while
// holding a use of it (so a concurrent `close()` waits for the closure, and the number cannot be
// reused under it). The descriptor is never exposed as a property: a stored copy would outlive
// the socket and might name another file after the close.
//
// Options that the kernel reads at bind or listen time (IPV6_V6ONLY, SO_REUSEADDR, SO_REUSEPORT)
// are parameters of `bind` (TCPListener+Options.swift, UDPSocket's); here they can be read back.

/// TCP keep-alive: after ``idle`` without traffic, the kernel sends a probe every ``interval``,
/// and resets the connection (reads and writes then fail with `ETIMEDOUT`) after ``count``
/// probes without an answer. Detects a peer that vanished (a crashed host, a dropped NAT
/// mapping) on an idle connection.
///
/// The kernel counts in whole seconds: ``idle`` and ``interval`` are rounded up to whole
/// seconds and must be within 1...32,767 s, ``count`` within 1...127; outside, setting it throws
/// ``IOError`` with `EINVAL`.
public struct TCPKeepAlive: Sendable, Hashable {
    /// Time without traffic before the first probe (`TCP_KEEPIDLE`). Linux's default: 7,200 s.
    public var idle: Duration
    /// Time between probes (`TCP_KEEPINTVL`). Linux's default: 75 s.
    public var interval: Duration
    /// Unanswered probes before the connection is reset (`TCP_KEEPCNT`). Linux's default: 9.
    public var count: Int

    public init(idle: Duration, interval: Duration, count: Int) {
        self.idle = idle
        self.interval = interval
        self.count = count
    }
}

extension SocketHandle {
    /// An `int` option as a Bool.
    func flag(level: CInt, name: CInt, _ operation: StaticString) throws(IOError) -> Bool {
        try getOption(level: level, name: name, operation) as CInt != 0
    }

    /// Lends the descriptor to `body`, holding a use (see the file's notes).
    func withBorrowedDescriptor<Result>(_ body: (CInt) throws -> Result) throws -> Result {
        var outcome: Swift.Result<Result, any Error>?
        try withFD("withUnsafeFileDescriptor") { (fd) throws(IOError) in outcome = Swift.Result { try body(fd) } }
        return try outcome!.get()
    }

    /// `SO_SNDBUF` / `SO_RCVBUF`.
    func setBufferSize(_ name: CInt, _ bytes: Int, _ operation: StaticString) throws(IOError) {
        guard bytes > 0, bytes <= Int(CInt.max) / 2 else {
            throw IOError.invalidArgument("\(operation)", "the size must be within 1...\(CInt.max / 2) bytes, got \(bytes)")
        }
        try setOption(level: SOL_SOCKET, name: name, CInt(bytes), operation)
    }

    func bufferSize(_ name: CInt, _ operation: StaticString) throws(IOError) -> Int {
        Int(try getOption(level: SOL_SOCKET, name: name, operation) as CInt)
    }

    func setKeepAlive(_ keepAlive: TCPKeepAlive?) throws(IOError) {
        guard let keepAlive else {
            return try setOption(level: SOL_SOCKET, name: SO_KEEPALIVE, CInt(0), "setsockopt(SO_KEEPALIVE)")
        }
        func seconds(_ duration: Duration) -> CInt {
            let (whole, attoseconds) = duration.components
            let rounded = attoseconds > 0 ? whole + 1 : whole
            return CInt(clamping: rounded)
        }
        try setOption(level: CInt(IPPROTO_TCP), name: TCP_KEEPIDLE, seconds(keepAlive.idle), "setsockopt(TCP_KEEPIDLE)")
        try setOption(level: CInt(IPPROTO_TCP), name: TCP_KEEPINTVL, seconds(keepAlive.interval), "setsockopt(TCP_KEEPINTVL)")
        try setOption(level: CInt(IPPROTO_TCP), name: TCP_KEEPCNT, CInt(clamping: keepAlive.count), "setsockopt(TCP_KEEPCNT)")
        try setOption(level: SOL_SOCKET, name: SO_KEEPALIVE, CInt(1), "setsockopt(SO_KEEPALIVE)")
    }

    func keepAlive() throws(IOError) -> TCPKeepAlive? {
        guard try flag(level: SOL_SOCKET, name: SO_KEEPALIVE, "getsockopt(SO_KEEPALIVE)") else { return nil }
        let idle: CInt = try getOption(level: CInt(IPPROTO_TCP), name: TCP_KEEPIDLE, "getsockopt(TCP_KEEPIDLE)")
        let interval: CInt = try getOption(level: CInt(IPPROTO_TCP), name: TCP_KEEPINTVL, "getsockopt(TCP_KEEPINTVL)")
        let count: CInt = try getOption(level: CInt(IPPROTO_TCP), name: TCP_KEEPCNT, "getsockopt(TCP_KEEPCNT)")
        return TCPKeepAlive(idle: .seconds(idle), interval: .seconds(interval), count: Int(count))
    }

    func setLinger(_ linger: Duration?) throws(IOError) {
        var value = Glibc.linger(l_onoff: 0, l_linger: 0)
        if let linger {
            guard linger >= .zero else { throw IOError.invalidArgument("setsockopt(SO_LINGER)", "the linger time must not be negative, got \(linger)") }
            let (whole, attoseconds) = linger.components
            value = Glibc.linger(l_onoff: 1, l_linger: CInt(clamping: attoseconds > 0 ? whole + 1 : whole))
        }
        try setOption(level: SOL_SOCKET, name: SO_LINGER, value, "setsockopt(SO_LINGER)")
    }

    func linger() throws(IOError) -> Duration? {
        var value = Glibc.linger()
        var length = socklen_t(MemoryLayout<Glibc.linger>.size)
        _ = try withFD("getsockopt(SO_LINGER)") { (fd) throws(IOError) in
            try syscall("getsockopt(SO_LINGER)") { getsockopt(fd, SOL_SOCKET, SO_LINGER, &value, &length) }
        }
        return value.l_onoff == 0 ? nil : .seconds(value.l_linger)
    }
}

// MARK: Every stream socket (TCPStream, UnixStream)

extension StreamSocket {
    /// Sets the kernel's send buffer (`SO_SNDBUF`), in bytes. Linux doubles the value for its
    /// bookkeeping (``sendBufferSize`` reads back the doubled value), caps it at
    /// `net.core.wmem_max` and raises it to a minimum of 4,608; setting it turns off the kernel's
    /// automatic sizing for this socket.
    ///
    /// - Throws: ``IOError`` with `EINVAL` for a size outside 1...1,073,741,823; `EBADF` once closed.
    public func setSendBufferSize(_ bytes: Int) throws(IOError) {
        try handle.setBufferSize(SO_SNDBUF, bytes, "setsockopt(SO_SNDBUF)")
    }

    /// The kernel's send buffer size in bytes (`SO_SNDBUF`), as the kernel reports it.
    public var sendBufferSize: Int {
        get throws(IOError) { try handle.bufferSize(SO_SNDBUF, "getsockopt(SO_SNDBUF)") }
    }

    /// Sets the kernel's receive buffer (`SO_RCVBUF`), in bytes: as ``setSendBufferSize(_:)``,
    /// capped at `net.core.rmem_max`, minimum 2,304. On TCP, the window scale is chosen at connect
    /// time, so a receive buffer set after the connection was made cannot raise the window past
    /// what that scale allows; set it on the listener (accepted connections inherit it) for
    /// large windows.
    public func setReceiveBufferSize(_ bytes: Int) throws(IOError) {
        try handle.setBufferSize(SO_RCVBUF, bytes, "setsockopt(SO_RCVBUF)")
    }

    /// The kernel's receive buffer size in bytes (`SO_RCVBUF`), as the kernel reports it.
    public var receiveBufferSize: Int {
        get throws(IOError) { try handle.bufferSize(SO_RCVBUF, "getsockopt(SO_RCVBUF)") }
    }

    /// Lends the socket's file descriptor to `body`, for an option or call this type does not
    /// offer (`setsockopt`, `getsockopt`, `ioctl`).
    ///
    /// The descriptor is valid only during `body`: a concurrent ``close()`` takes effect after
    /// `body` returns. Do not close it, store it, clear `O_NONBLOCK`, or read or write it
    /// (the library's readiness bookkeeping would not know).
    ///
    /// ```swift
    /// let congestionControl = try stream.withUnsafeFileDescriptor { fd -> String in
    ///     var name = [UInt8](repeating: 0, count: 16)
    ///     var length = socklen_t(name.count)
    ///     guard getsockopt(fd, CInt(IPPROTO_TCP), TCP_CONGESTION, &name, &length) == 0 else {
    ///         throw IOError(errno: .init(rawValue: errno), operation: "getsockopt(TCP_CONGESTION)")
    ///     }
    ///     return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)   // "cubic"
    /// }
    /// ```
    /// - Throws: ``IOError`` with `EBADF` if the socket is closed (`body` is not called); what `body` throws.
    public func withUnsafeFileDescriptor<Result>(_ body: (CInt) throws -> Result) throws -> Result {
        try handle.withBorrowedDescriptor(body)
    }
}

// MARK: TCPStream

extension TCPStream {
    /// Enables TCP keep-alive with these timings, or disables it (`nil`). See ``TCPKeepAlive``.
    ///
    /// - Throws: ``IOError`` with `EINVAL` (operation `"setsockopt(TCP_KEEPIDLE)"`, or
    ///   `TCP_KEEPINTVL`, `TCP_KEEPCNT`) for a timing out of the kernel's range; `EBADF` once closed.
    public func setKeepAlive(_ keepAlive: TCPKeepAlive?) throws(IOError) {
        try handle.setKeepAlive(keepAlive)
    }

    /// The keep-alive timings, or `nil` when keep-alive is off (the default). A connection with
    /// keep-alive enabled but no timings of its own reports the system's
    /// (`net.ipv4.tcp_keepalive_time`, `_intvl`, `_probes`).
    public var keepAlive: TCPKeepAlive? {
        get throws(IOError) { try handle.keepAlive() }
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`); see ``setNoDelay(_:)``.
    public var noDelay: Bool {
        get throws(IOError) { try handle.flag(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, "getsockopt(TCP_NODELAY)") }
    }

    /// Sets what ``StreamSocket/close()`` does with unsent data (`SO_LINGER`):
    /// - `nil` (the default): close returns at once; the kernel goes on sending in the background.
    /// - `.zero`: close discards unsent data and resets the connection (the peer's reads and
    ///   writes fail with `ECONNRESET`): an abortive close, and no TIME_WAIT state.
    /// - a positive time (rounded up to whole seconds): **close blocks the calling thread** until
    ///   the data is sent or the time passes, even on this non-blocking socket (Linux's
    ///   behaviour). On a pool thread that stalls every task of the thread; prefer
    ///   ``StreamSocket/shutdown(_:)`` of `.write` and reading to end of stream.
    ///
    /// - Throws: ``IOError`` with `EINVAL` for a negative time; `EBADF` once closed.
    public func setLinger(_ linger: Duration?) throws(IOError) {
        try handle.setLinger(linger)
    }

    /// The linger time (`SO_LINGER`), `nil` when off; see ``setLinger(_:)``.
    public var linger: Duration? {
        get throws(IOError) { try handle.linger() }
    }
}

// MARK: Listeners

extension TCPListener {
    /// Sets the receive buffer (`SO_RCVBUF`) that accepted connections inherit; set before they
    /// arrive, it also sizes the TCP window scale they negotiate. See
    /// ``StreamSocket/setReceiveBufferSize(_:)`` for the kernel's doubling and limits.
    public func setReceiveBufferSize(_ bytes: Int) throws(IOError) {
        try handle.setBufferSize(SO_RCVBUF, bytes, "setsockopt(SO_RCVBUF)")
    }

    /// The receive buffer size in bytes (`SO_RCVBUF`), as the kernel reports it.
    public var receiveBufferSize: Int {
        get throws(IOError) { try handle.bufferSize(SO_RCVBUF, "getsockopt(SO_RCVBUF)") }
    }

    /// Whether `SO_REUSEADDR` is set (``bind(_:backlog:reusePort:)`` always sets it, so a
    /// restarted server can bind its port while old connections are in TIME_WAIT).
    public var reuseAddress: Bool {
        get throws(IOError) { try handle.flag(level: SOL_SOCKET, name: SO_REUSEADDR, "getsockopt(SO_REUSEADDR)") }
    }

    /// Whether `SO_REUSEPORT` is set (the `reusePort` parameter of `bind`).
    public var reusePort: Bool {
        get throws(IOError) { try handle.flag(level: SOL_SOCKET, name: SO_REUSEPORT, "getsockopt(SO_REUSEPORT)") }
    }

    /// Whether an IPv6 listener accepts IPv6 connections only (`IPV6_V6ONLY`; see
    /// ``bind(_:backlog:reusePort:v6Only:)``).
    ///
    /// - Throws: ``IOError`` (`ENOPROTOOPT` or `EOPNOTSUPP`) on an IPv4 listener.
    public var isV6Only: Bool {
        get throws(IOError) { try handle.flag(level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, "getsockopt(IPV6_V6ONLY)") }
    }

    /// Binds a listening socket to `address`, choosing whether an IPv6 socket is IPv6-only.
    ///
    /// - Parameters:
    ///   - address: where to listen (port 0 picks a free port).
    ///   - backlog: the accept queue length.
    ///   - reusePort: sets `SO_REUSEPORT`, as in ``bind(_:backlog:reusePort:)``.
    ///   - v6Only: sets `IPV6_V6ONLY` before the bind: `true` makes a listener on `::`
    ///     accept IPv6 connections only (so an IPv4 listener may take the same port); `false`
    ///     makes it accept IPv4 too, as IPv4-mapped addresses (`::ffff:a.b.c.d`), whatever the
    ///     system default (`net.ipv6.bindv6only`). Only for an IPv6 `address`: for an IPv4 one it
    ///     throws ``IOError`` with `EINVAL`.
    /// See ``bind(_:backlog:reusePort:)`` for the errors.
    public static func bind(
        _ address: SocketAddress, backlog: CInt = TCPListener.defaultBacklog, reusePort: Bool = false, v6Only: Bool
    ) throws(IOError) -> TCPListener {
        guard address.family == .ipv6 else {
            throw IOError.invalidArgument("bind to \(address)", "v6Only applies to IPv6 addresses only")
        }
        let handle = try SocketHandle(family: address.protocolFamily, type: CInt(SOCK_STREAM.rawValue))
        let listener = TCPListener(handle: handle)
        try handle.setOption(level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, CInt(v6Only ? 1 : 0), "setsockopt(IPV6_V6ONLY)")
        try listener.bindAndListen(address, backlog: backlog, reusePort: reusePort)
        return listener
    }
}

extension StreamListener {
    /// Lends the listening socket's descriptor to `body`; see ``StreamSocket/withUnsafeFileDescriptor(_:)``.
    public func withUnsafeFileDescriptor<Result>(_ body: (CInt) throws -> Result) throws -> Result {
        try handle.withBorrowedDescriptor(body)
    }
}

// MARK: UDP

extension UDPSocket {
    /// Sets the kernel's send buffer (`SO_SNDBUF`); see ``StreamSocket/setSendBufferSize(_:)``.
    public func setSendBufferSize(_ bytes: Int) throws(IOError) {
        try handle.setBufferSize(SO_SNDBUF, bytes, "setsockopt(SO_SNDBUF)")
    }

    /// The send buffer size in bytes (`SO_SNDBUF`), as the kernel reports it (doubled).
    public var sendBufferSize: Int {
        get throws(IOError) { try handle.bufferSize(SO_SNDBUF, "getsockopt(SO_SNDBUF)") }
    }

    // The receive buffer's setter and getter are in UDPSocket+Batch.swift.

    /// Whether an IPv6 socket is IPv6-only (`IPV6_V6ONLY`). Throws ``IOError`` on an IPv4 socket.
    public var isV6Only: Bool {
        get throws(IOError) { try handle.flag(level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, "getsockopt(IPV6_V6ONLY)") }
    }

    /// Lends the socket's descriptor to `body`; see ``StreamSocket/withUnsafeFileDescriptor(_:)``.
    public func withUnsafeFileDescriptor<Result>(_ body: (CInt) throws -> Result) throws -> Result {
        try handle.withBorrowedDescriptor(body)
    }
}
