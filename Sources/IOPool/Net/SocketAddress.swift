import Glibc

/// An IP socket address: an IPv4 or IPv6 host address and a port.
///
/// Only numeric addresses are accepted; no DNS lookup is ever done here. For a name, use
/// ``resolve(host:port:)`` (every address of the name) or ``TCPStream/connect(host:port:from:timeout:)``.
///
/// ```swift
/// let a = try SocketAddress("127.0.0.1:8080")
/// let b = try SocketAddress("[::1]:8080")
/// let c = try SocketAddress(host: "fe80::1%2", port: 443)   // link-local, scope id 2
/// let d = SocketAddress.loopbackIPv4(port: 0)                 // let the kernel pick a port
/// print(b)                                                     // "[::1]:8080"
/// ```
///
/// The address is stored as plain values (family, address bytes, port and, for IPv6, the scope id), so
/// `==` and `hash(into:)` compare exactly those and never the padding of a C `sockaddr`. The IPv6 flow
/// label is not kept (it is always 0 in the `sockaddr_in6` this type produces).
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address family of a ``SocketAddress``.
    ///
    /// More families (Unix-domain sockets) may be added in a later version: a `switch` over a `Family`
    /// outside this package needs an `@unknown default:` case.
    @nonexhaustive
    public enum Family: Sendable, Hashable {
        /// IPv4 (`AF_INET`).
        case ipv4
        /// IPv6 (`AF_INET6`).
        case ipv6
    }

    /// An IPv4 address as the kernel stores it.
    struct IPv4: Sendable, Hashable {
        /// `sin_addr.s_addr`: the four address bytes in network byte order.
        var address: UInt32
        /// The port, in host byte order.
        var port: UInt16
    }

    /// An IPv6 address as the kernel stores it.
    struct IPv6: Sendable, Hashable {
        /// Bytes 0..<8 of `sin6_addr`, loaded in memory order.
        var addressHigh: UInt64
        /// Bytes 8..<16 of `sin6_addr`, loaded in memory order.
        var addressLow: UInt64
        /// The port, in host byte order.
        var port: UInt16
        /// `sin6_scope_id`: the interface index of a link-local address, 0 for none.
        var scopeID: UInt32
    }

    /// The address value. A `.unix` case can be added here without changing the public API.
    enum Storage: Sendable, Hashable {
        case v4(IPv4)
        case v6(IPv6)
    }

    let storage: Storage

    init(_ storage: Storage) {
        self.storage = storage
    }

    // MARK: Public properties

    /// Whether this is an IPv4 or an IPv6 address.
    public var family: Family {
        switch storage {
        case .v4: return .ipv4
        case .v6: return .ipv6
        }
    }

    /// The port, in host byte order.
    public var port: UInt16 {
        switch storage {
        case .v4(let v4): return v4.port
        case .v6(let v6): return v6.port
        }
    }

    /// The numeric host, e.g. `"127.0.0.1"` or `"::1"`, without brackets.
    ///
    /// An IPv6 address with a nonzero scope id is followed by `%` and the numeric scope id, as
    /// `"fe80::1%2"`; that text is accepted again by ``init(host:port:)``.
    public var host: String {
        switch storage {
        case .v4(let v4):
            return withUnsafeBytes(of: in_addr(s_addr: v4.address)) { Self.format(AF_INET, $0) }
        case .v6(let v6):
            let text = withUnsafeBytes(of: v6.in6Address) { Self.format(AF_INET6, $0) }
            return v6.scopeID == 0 ? text : "\(text)%\(v6.scopeID)"
        }
    }

    /// The address as `"127.0.0.1:8080"` or `"[::1]:8080"` (`"[fe80::1%2]:8080"` with a scope id);
    /// ``init(_:)`` parses it back to an equal address.
    public var description: String {
        switch storage {
        case .v4: return "\(host):\(port)"
        case .v6: return "[\(host)]:\(port)"
        }
    }

    // MARK: Factories

    /// The IPv4 address `a.b.c.d` with the given port.
    ///
    /// ```swift
    /// let address = SocketAddress.ipv4(192, 168, 1, 10, port: 80)   // 192.168.1.10:80
    /// ```
    public static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> SocketAddress {
        let hostOrder = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
        return SocketAddress(.v4(IPv4(address: hostOrder.bigEndian, port: port)))
    }

    /// The IPv4 loopback address `127.0.0.1` with the given port.
    public static func loopbackIPv4(port: UInt16) -> SocketAddress {
        ipv4(127, 0, 0, 1, port: port)
    }

    /// The IPv6 loopback address `::1` with the given port.
    public static func loopbackIPv6(port: UInt16) -> SocketAddress {
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0[15] = 1 }
        return SocketAddress(.v6(IPv6(address, port: port, scopeID: 0)))
    }

    /// The IPv4 wildcard address `0.0.0.0` with the given port: binding to it listens on every IPv4
    /// interface.
    public static func anyIPv4(port: UInt16) -> SocketAddress {
        ipv4(0, 0, 0, 0, port: port)
    }

    /// The IPv6 wildcard address `::` with the given port: binding to it listens on every IPv6
    /// interface (and, unless `IPV6_V6ONLY` is set, on IPv4 too).
    public static func anyIPv6(port: UInt16) -> SocketAddress {
        SocketAddress(.v6(IPv6(in6_addr(), port: port, scopeID: 0)))
    }

    // MARK: Parsing

    /// Parses `"host:port"`, where host is an IPv4 dotted quad, or `"[host]:port"`, where host is an
    /// IPv6 address, optionally followed by `%` and a scope (a numeric scope id or an interface name,
    /// as `"[fe80::1%eth0]:80"`).
    ///
    /// Only numeric hosts are accepted: no DNS lookup is done. The port is one or more decimal digits,
    /// with no sign, in `0...65535`.
    ///
    /// - Throws: ``SocketAddressError``, whose ``SocketAddressError/reason`` says what is wrong,
    ///   e.g. `missing ":port"` or `IPv6 address must be in brackets, as "[::1]:80"`.
    public init(_ string: String) throws(SocketAddressError) {
        func fail(_ reason: String) -> SocketAddressError {
            SocketAddressError(input: string, reason: reason)
        }
        if string.isEmpty { throw fail("input is empty") }

        if string.hasPrefix("[") {
            // "[v6]:port"
            let afterBracket = string.index(after: string.startIndex)
            guard let close = string[afterBracket...].firstIndex(of: "]") else {
                throw fail(#"missing "]""#)
            }
            let hostText = string[afterBracket..<close]
            let rest = string[string.index(after: close)...]
            guard !rest.isEmpty else { throw fail(#"missing ":port""#) }
            guard rest.first == ":" else {
                throw fail("unexpected \(Self.quoted(rest)) after \"]\"; expected \":port\"")
            }
            if hostText.isEmpty { throw fail("host is empty") }
            guard let v6 = try Self.parseIPv6(hostText, input: string) else {
                if Self.parseIPv4(hostText) != nil {
                    throw fail(
                        "\(Self.quoted(hostText)) is an IPv4 address; only IPv6 addresses go in brackets, as \(Self.quoted(hostText + rest))"
                    )
                }
                throw fail("host \(Self.quoted(hostText)) is not a numeric IPv6 address (no DNS lookup is done)")
            }
            let port = try Self.parsePort(rest.dropFirst(), input: string)
            self.init(.v6(IPv6(v6.address, port: port, scopeID: v6.scopeID)))
            return
        }

        // "a.b.c.d:port"
        guard let lastColon = string.lastIndex(of: ":") else { throw fail(#"missing ":port""#) }
        let hostText = string[..<lastColon]
        let portText = string[string.index(after: lastColon)...]
        if hostText.contains(":") {
            // Two or more colons: an IPv6 address without brackets, or junk.
            if Self.parseIPv6Address(hostText) != nil {
                let port = portText.isEmpty ? "port" : String(portText)
                throw fail("IPv6 address must be in brackets, as \(Self.quoted("[\(hostText)]:\(port)"))")
            }
            if Self.parseIPv6Address(string[...]) != nil {
                throw fail("IPv6 address must be in brackets, as \(Self.quoted("[\(string)]:port"))")
            }
        }
        if hostText.isEmpty { throw fail("host is empty") }
        guard let address = Self.parseIPv4(hostText) else {
            throw fail("host \(Self.quoted(hostText)) is not a numeric IPv4 or IPv6 address (no DNS lookup is done)")
        }
        let port = try Self.parsePort(portText, input: string)
        self.init(.v4(IPv4(address: address, port: port)))
    }

    /// Makes an address from a numeric host and a port.
    ///
    /// - Parameters:
    ///   - host: An IPv4 dotted quad (`"10.0.0.1"`) or an IPv6 address without brackets (`"::1"`),
    ///     optionally followed by `%` and a scope (`"fe80::1%2"`, `"fe80::1%eth0"`). No DNS lookup
    ///     is done.
    ///   - port: The port, in host byte order.
    /// - Throws: ``SocketAddressError``, with ``SocketAddressError/input`` set to `host`.
    public init(host: String, port: UInt16) throws(SocketAddressError) {
        func fail(_ reason: String) -> SocketAddressError {
            SocketAddressError(input: host, reason: reason)
        }
        if host.isEmpty { throw fail("host is empty") }
        if host.hasPrefix("[") {
            throw fail("host must not be in brackets; brackets belong only in \"[host]:port\" strings")
        }
        if host.contains(":") {
            if let v6 = try Self.parseIPv6(host[...], input: host) {
                self.init(.v6(IPv6(v6.address, port: port, scopeID: v6.scopeID)))
                return
            }
        } else if let address = Self.parseIPv4(host[...]) {
            self.init(.v4(IPv4(address: address, port: port)))
            return
        }
        throw fail("host \(Self.quoted(host)) is not a numeric IPv4 or IPv6 address (no DNS lookup is done)")
    }

    // MARK: Internal: the C view

    /// The `AF_INET` / `AF_INET6` constant of this address's family, for `socket(2)`.
    var protocolFamily: CInt {
        switch storage {
        case .v4: return AF_INET
        case .v6: return AF_INET6
        }
    }

    /// Calls `body` with a pointer to this address as a `sockaddr` (a `sockaddr_in` or `sockaddr_in6`,
    /// zero-filled apart from the address fields) and its length, for `bind`, `connect`, `sendto`.
    ///
    /// The pointer is valid only during `body`.
    func withSockAddr<R, E: Error>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R
    ) throws(E) -> R {
        switch storage {
        case .v4(let v4):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = v4.port.bigEndian
            sin.sin_addr = in_addr(s_addr: v4.address)
            return try Self.withRebound(&sin, body)
        case .v6(let v6):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = v6.port.bigEndian
            sin6.sin6_flowinfo = 0
            sin6.sin6_addr = v6.in6Address
            sin6.sin6_scope_id = v6.scopeID
            return try Self.withRebound(&sin6, body)
        }
    }

    /// Makes an address from what `getsockname`, `getpeername`, `accept` or `recvfrom` filled in.
    ///
    /// Returns `nil` for a family this type does not model (e.g. `AF_UNIX`) or a `length` too short
    /// for the family's `sockaddr`.
    init?(storage: sockaddr_storage, length: socklen_t) {
        switch CInt(storage.ss_family) {
        case AF_INET:
            guard Int(length) >= MemoryLayout<sockaddr_in>.size else { return nil }
            let sin = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }
            self.init(.v4(IPv4(address: sin.sin_addr.s_addr, port: UInt16(bigEndian: sin.sin_port))))
        case AF_INET6:
            guard Int(length) >= MemoryLayout<sockaddr_in6>.size else { return nil }
            let sin6 = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self) }
            self.init(
                .v6(IPv6(sin6.sin6_addr, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)))
        default:
            return nil
        }
    }

    // MARK: Private helpers

    private static func withRebound<T, R, E: Error>(
        _ value: inout T, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R
    ) throws(E) -> R {
        let length = socklen_t(MemoryLayout<T>.size)
        return try withUnsafePointer(to: &value) { (pointer: UnsafePointer<T>) throws(E) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                (address: UnsafePointer<sockaddr>) throws(E) -> R in
                try body(address, length)
            }
        }
    }

    /// `inet_ntop` of an `in_addr` or `in6_addr`.
    private static func format(_ family: CInt, _ address: UnsafeRawBufferPointer) -> String {
        let capacity = Int(INET6_ADDRSTRLEN)
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer in
            guard let text = inet_ntop(family, address.baseAddress, buffer.baseAddress, socklen_t(capacity)) else {
                preconditionFailure("inet_ntop failed for family \(family): errno \(errno)")
            }
            return String(cString: text)
        }
    }

    /// `inet_pton(AF_INET)`: the address in network byte order, or nil.
    private static func parseIPv4(_ text: Substring) -> UInt32? {
        // An embedded NUL would end the C string early and let trailing junk through.
        if text.utf8.contains(0) { return nil }
        var address = in_addr()
        let ok = String(text).withCString { inet_pton(AF_INET, $0, &address) }
        return ok == 1 ? address.s_addr : nil
    }

    /// Parses an IPv6 address with an optional `%scope`. Returns nil if the address part is not IPv6;
    /// throws if the address is IPv6 but the scope is bad.
    private static func parseIPv6(
        _ text: Substring, input: String
    ) throws(SocketAddressError) -> (address: in6_addr, scopeID: UInt32)? {
        guard let address = parseIPv6Address(text) else { return nil }
        guard let percent = text.firstIndex(of: "%") else { return (address, 0) }
        return (address, try parseScope(text[text.index(after: percent)...], input: input))
    }

    /// `inet_pton(AF_INET6)` of the part of `text` before any `%scope`, or nil.
    private static func parseIPv6Address(_ text: Substring) -> in6_addr? {
        if text.utf8.contains(0) { return nil }
        let addressText = text[..<(text.firstIndex(of: "%") ?? text.endIndex)]
        var address = in6_addr()
        let ok = String(addressText).withCString { inet_pton(AF_INET6, $0, &address) }
        return ok == 1 ? address : nil
    }

    /// A numeric scope id, or an interface name looked up with `if_nametoindex` (a local lookup).
    private static func parseScope(_ scope: Substring, input: String) throws(SocketAddressError) -> UInt32 {
        if scope.isEmpty {
            throw SocketAddressError(input: input, reason: #"scope id after "%" is empty"#)
        }
        if scope.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            guard let id = UInt32(scope) else {
                throw SocketAddressError(input: input, reason: "scope id \(scope) is out of range 0...\(UInt32.max)")
            }
            return id
        }
        let index = String(scope).withCString { if_nametoindex($0) }
        guard index != 0 else {
            throw SocketAddressError(
                input: input,
                reason: "scope \(quoted(scope)) is neither a numeric scope id nor the name of a network interface")
        }
        return index
    }

    /// Decimal digits only (no sign, no spaces), in 0...65535.
    private static func parsePort(_ text: Substring, input: String) throws(SocketAddressError) -> UInt16 {
        if text.isEmpty { throw SocketAddressError(input: input, reason: "port is empty") }
        if text.first == "+" {
            throw SocketAddressError(input: input, reason: "port \(quoted(text)) must not have a \"+\" sign")
        }
        var value: UInt32 = 0
        var tooLarge = false
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else {
                throw SocketAddressError(input: input, reason: "port \(quoted(text)) is not a decimal number")
            }
            if !tooLarge {
                value = value * 10 + UInt32(byte - UInt8(ascii: "0"))
                tooLarge = value > UInt32(UInt16.max)
            }
        }
        if tooLarge {
            throw SocketAddressError(input: input, reason: "port \(text) is out of range 0...65535")
        }
        return UInt16(value)
    }

    /// `text` in double quotes, with control characters escaped.
    fileprivate static func quoted(_ text: some StringProtocol) -> String {
        String(reflecting: String(text))
    }
}

extension SocketAddress.IPv6 {
    init(_ address: in6_addr, port: UInt16, scopeID: UInt32) {
        let (high, low) = withUnsafeBytes(of: address) {
            ($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        self.init(addressHigh: high, addressLow: low, port: port, scopeID: scopeID)
    }

    /// The address bytes as an `in6_addr`.
    var in6Address: in6_addr {
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) {
            $0.storeBytes(of: addressHigh, toByteOffset: 0, as: UInt64.self)
            $0.storeBytes(of: addressLow, toByteOffset: 8, as: UInt64.self)
        }
        return address
    }
}

/// The error thrown when a string is not a valid numeric socket address.
///
/// ``reason`` says exactly what is wrong, for example:
///
/// - `"localhost:80": host "localhost" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)`
/// - `"1.2.3.4": missing ":port"`
/// - `"1.2.3.4:70000": port 70000 is out of range 0...65535`
/// - `"[::1:80": missing "]"`
/// - `"::1:80": IPv6 address must be in brackets, as "[::1]:80"`
public struct SocketAddressError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text that was rejected: the whole string given to ``SocketAddress/init(_:)``, or the host
    /// given to ``SocketAddress/init(host:port:)``.
    public var input: String
    /// What is wrong with ``input``, e.g. `missing ":port"`.
    public var reason: String

    /// Makes an error for `input`, saying `reason`.
    public init(input: String, reason: String) {
        self.input = input
        self.reason = reason
    }

    /// The quoted input and the reason, as `"1.2.3.4": missing ":port"`.
    public var description: String {
        "\(SocketAddress.quoted(input)): \(reason)"
    }
}
