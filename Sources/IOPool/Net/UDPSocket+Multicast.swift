import Glibc
import SystemPackage

// Design notes: multicast options.
//
// These are thin, synchronous `setsockopt` calls: nothing waits, nothing touches the reactor, so
// they behave the same on both pools and outside any pool.
//
// Which option level: a membership uses the level of the *group's* family (an IPv4 group joined
// with `IP_ADD_MEMBERSHIP`, an IPv6 group with `IPV6_ADD_MEMBERSHIP`; Linux accepts an IPv4
// membership on an IPv6 socket, for IPv4-mapped traffic). The sending options (loopback, TTL/hop
// limit, outgoing interface) use the level of the *socket's* family, read once per call with
// `SO_DOMAIN` (one cheap getsockopt; these are set-up calls, never on the data path).
//
// IPv4 memberships and `IP_MULTICAST_IF` take a `struct ip_mreqn`, which names the interface by
// address or by index (Linux 2.2+), so `MulticastInterface` offers both for IPv4. IPv6 names
// interfaces by index only.
//
// What the loopback interface does (measured on Linux 6.18, and long-standing kernel behaviour):
// `lo` has no `MULTICAST` flag by default. IPv4 multicast still works through it when the
// interface is named (join on 127.0.0.1 or index of `lo`, send with `IP_MULTICAST_IF` 127.0.0.1),
// but a datagram *sent out of* `lo` always comes back in through `lo`, so on `lo`
// `IP_MULTICAST_LOOP` and a TTL of 0 change nothing; they matter on a real interface. IPv6
// multicast cannot be sent through `lo` at all (`ENETUNREACH`: no multicast route), though a
// membership on it can be joined and left. See UDPMulticastTests for what is tested where.

extension UDPSocket {
    /// The network interface of a multicast membership or of outgoing multicast datagrams.
    ///
    /// ```swift
    /// try socket.joinMulticastGroup(group, interface: .address(.loopbackIPv4(port: 0)))  // IPv4, by address
    /// try socket.joinMulticastGroup(group6, interface: try .named("eth0"))               // by index
    /// ```
    public struct MulticastInterface: Sendable, Hashable, CustomStringConvertible {
        enum Storage: Sendable, Hashable {
            case any
            /// `in_addr.s_addr`, network byte order.
            case ipv4Address(UInt32)
            /// An IPv6 address given where only IPv4 can name an interface by address.
            case ipv6Address(SocketAddress)
            case index(UInt32)
        }

        let storage: Storage

        /// Let the kernel choose, by its routing table. For a membership this is usually the
        /// interface of the default route, which may be a real network: name the interface when it
        /// matters.
        public static let any = MulticastInterface(storage: .any)

        /// The IPv4 interface that has `address` (its port is ignored), e.g. 127.0.0.1 for `lo`.
        /// Only IPv4 names an interface by address: with an IPv6 membership or socket, this throws
        /// ``IOError`` with `EINVAL`; use ``index(_:)`` or ``named(_:)`` there.
        public static func address(_ address: SocketAddress) -> MulticastInterface {
            switch address.storage {
            case .v4(let v4): return MulticastInterface(storage: .ipv4Address(v4.address))
            case .v6: return MulticastInterface(storage: .ipv6Address(address))
            }
        }

        /// The interface with index `index` (as `if_nametoindex(3)` returns, or `ip link` shows);
        /// works for IPv4 and IPv6. Index 0 means ``any``.
        public static func index(_ index: UInt32) -> MulticastInterface {
            MulticastInterface(storage: index == 0 ? .any : .index(index))
        }

        /// The interface named `name` (e.g. `"lo"`, `"eth0"`), looked up now with
        /// `if_nametoindex(3)` (a local lookup).
        ///
        /// - Throws: ``IOError`` with `ENODEV` if no interface has that name.
        public static func named(_ name: String) throws(IOError) -> MulticastInterface {
            let index = name.withCString { if_nametoindex($0) }
            guard index != 0 else {
                throw IOError(errno: .operationNotSupportedByDevice, operation: "if_nametoindex(\(name))", detail: "no network interface is named \"\(name)\"")
            }
            return MulticastInterface(storage: .index(index))
        }

        /// `"any"`, `"address 127.0.0.1"` or `"index 1"`.
        public var description: String {
            switch storage {
            case .any: return "any"
            case .ipv4Address(let address): return "address \(SocketAddress(.v4(.init(address: address, port: 0))).host)"
            case .ipv6Address(let address): return "address \(address.host)"
            case .index(let index): return "index \(index)"
            }
        }

        /// The `ip_mreqn` interface fields (address, index), or an error for an IPv6 address.
        func ipv4Fields(_ operation: String) throws(IOError) -> (address: UInt32, index: CInt) {
            switch storage {
            case .any: return (0, 0)  // INADDR_ANY
            case .ipv4Address(let address): return (address, 0)
            case .index(let index): return (0, CInt(bitPattern: index))
            case .ipv6Address(let address):
                throw IOError(
                    errno: .invalidArgument, operation: operation,
                    detail: "interface given by the IPv6 address \(address.host); name an interface by address only for IPv4, by index or name otherwise")
            }
        }

        /// The IPv6 interface index, or an error for an address.
        func ipv6Index(_ operation: String) throws(IOError) -> UInt32 {
            switch storage {
            case .any: return 0
            case .index(let index): return index
            case .ipv4Address, .ipv6Address:
                throw IOError(
                    errno: .invalidArgument, operation: operation,
                    detail: "IPv6 names a multicast interface by index (MulticastInterface.index or .named), not by address (\(self))")
            }
        }
    }

    // MARK: Memberships

    /// Joins the multicast group `group` (its port is ignored) on `interface`, so that datagrams
    /// sent to the group arrive at this socket (bind it to the group's port: the group address
    /// itself, e.g. `239.255.0.1:5000`, or a wildcard address).
    ///
    /// An IPv4 group (224.0.0.0/4) uses `IP_ADD_MEMBERSHIP`, an IPv6 group (ff00::/8)
    /// `IPV6_ADD_MEMBERSHIP`. A socket may join up to `net.ipv4.igmp_max_memberships` IPv4
    /// groups (20 by default).
    ///
    /// ```swift
    /// let group = try SocketAddress("239.255.0.1:5000")
    /// let receiver = try UDPSocket.bind(group, reuseAddress: true)
    /// try receiver.joinMulticastGroup(group, interface: .address(try SocketAddress("192.168.1.10:0")))
    /// ```
    ///
    /// - Throws: ``IOError``: `EINVAL` if `group` is not a multicast address (or an IPv6 membership
    ///   names its interface by address), `EADDRINUSE` if this socket already joined the group on
    ///   that interface, `ENODEV` if the interface does not exist (or, for ``MulticastInterface/any``,
    ///   if no route leads to the group).
    public func joinMulticastGroup(_ group: SocketAddress, interface: MulticastInterface = .any) throws(IOError) {
        try changeMembership(join: true, group, interface)
    }

    /// Leaves the multicast group `group` (its port is ignored) on `interface`, joined before by
    /// ``joinMulticastGroup(_:interface:)`` with the same interface. Closing the socket leaves
    /// every group it joined.
    ///
    /// Linux delivers a group's datagrams to every socket bound to the group's port whenever *any*
    /// socket on the host is a member (`IP_MULTICAST_ALL`, on by default), so after leaving, this
    /// socket stops receiving them only if no other socket there is still a member.
    ///
    /// - Throws: ``IOError``: `EADDRNOTAVAIL` if this socket is not a member of `group` there,
    ///   `EINVAL` as for ``joinMulticastGroup(_:interface:)``.
    public func leaveMulticastGroup(_ group: SocketAddress, interface: MulticastInterface = .any) throws(IOError) {
        try changeMembership(join: false, group, interface)
    }

    private func changeMembership(join: Bool, _ group: SocketAddress, _ interface: MulticastInterface) throws(IOError) {
        switch group.storage {
        case .v4(let v4):
            let option = join ? "IP_ADD_MEMBERSHIP" : "IP_DROP_MEMBERSHIP"
            let operation = "setsockopt(\(option)) group \(group.host) interface \(interface)"
            // 224.0.0.0/4: the first byte (in network order, the lowest byte in memory) is 1110xxxx.
            guard UInt32(bigEndian: v4.address) >> 28 == 0xE else {
                throw IOError(errno: .invalidArgument, operation: operation, detail: "\(group.host) is not an IPv4 multicast address (224.0.0.0/4)")
            }
            let (address, index) = try interface.ipv4Fields(operation)
            var request = ip_mreqn(
                imr_multiaddr: in_addr(s_addr: v4.address), imr_address: in_addr(s_addr: address), imr_ifindex: index)
            try setOption(CInt(IPPROTO_IP), join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &request, operation)
        case .v6(let v6):
            let option = join ? "IPV6_ADD_MEMBERSHIP" : "IPV6_DROP_MEMBERSHIP"
            let operation = "setsockopt(\(option)) group \(group.host) interface \(interface)"
            guard withUnsafeBytes(of: v6.in6Address, { $0[0] }) == 0xFF else {
                throw IOError(errno: .invalidArgument, operation: operation, detail: "\(group.host) is not an IPv6 multicast address (ff00::/8)")
            }
            var request = ipv6_mreq(ipv6mr_multiaddr: v6.in6Address, ipv6mr_interface: try interface.ipv6Index(operation))
            try setOption(CInt(IPPROTO_IPV6), join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, &request, operation)
        }
    }

    // MARK: Sending options

    /// Whether this host's own members of a group receive the multicast datagrams this socket
    /// sends (`IP_MULTICAST_LOOP` / `IPV6_MULTICAST_LOOP`, by the socket's family). On by default.
    ///
    /// This governs the copy the kernel loops back when it sends out of a real interface. A
    /// datagram sent out of the loopback interface (`lo`) comes back through `lo` whatever this
    /// says.
    public func setMulticastLoopback(_ enabled: Bool) throws(IOError) {
        var value = CInt(enabled ? 1 : 0)
        if try isIPv6() {
            try setOption(CInt(IPPROTO_IPV6), IPV6_MULTICAST_LOOP, &value, "setsockopt(IPV6_MULTICAST_LOOP)")
        } else {
            try setOption(CInt(IPPROTO_IP), IP_MULTICAST_LOOP, &value, "setsockopt(IP_MULTICAST_LOOP)")
        }
    }

    /// Whether multicast datagrams this socket sends are looped back to this host (see
    /// ``setMulticastLoopback(_:)``).
    public var multicastLoopback: Bool {
        get throws(IOError) {
            let value: CInt =
                try isIPv6()
                ? handle.getOption(level: CInt(IPPROTO_IPV6), name: IPV6_MULTICAST_LOOP, "getsockopt(IPV6_MULTICAST_LOOP)")
                : handle.getOption(level: CInt(IPPROTO_IP), name: IP_MULTICAST_LOOP, "getsockopt(IP_MULTICAST_LOOP)")
            return value != 0
        }
    }

    /// Sets how many routers the multicast datagrams this socket sends may cross
    /// (`IP_MULTICAST_TTL` / `IPV6_MULTICAST_HOPS`, by the socket's family): 0 keeps them on this
    /// host, 1 (the default) on the local network.
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `timeToLive` is not in `0...255`.
    public func setMulticastTimeToLive(_ timeToLive: Int) throws(IOError) {
        guard (0...255).contains(timeToLive) else {
            throw .invalidArgument("setMulticastTimeToLive(\(timeToLive))", "the time to live must be in 0...255")
        }
        var value = CInt(timeToLive)
        if try isIPv6() {
            try setOption(CInt(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, &value, "setsockopt(IPV6_MULTICAST_HOPS)")
        } else {
            try setOption(CInt(IPPROTO_IP), IP_MULTICAST_TTL, &value, "setsockopt(IP_MULTICAST_TTL)")
        }
    }

    /// The time to live (IPv4) or hop limit (IPv6) of the multicast datagrams this socket sends
    /// (see ``setMulticastTimeToLive(_:)``).
    public var multicastTimeToLive: Int {
        get throws(IOError) {
            let value: CInt =
                try isIPv6()
                ? handle.getOption(level: CInt(IPPROTO_IPV6), name: IPV6_MULTICAST_HOPS, "getsockopt(IPV6_MULTICAST_HOPS)")
                : handle.getOption(level: CInt(IPPROTO_IP), name: IP_MULTICAST_TTL, "getsockopt(IP_MULTICAST_TTL)")
            return Int(value)
        }
    }

    /// Sets the interface that multicast datagrams from this socket leave by (`IP_MULTICAST_IF` /
    /// `IPV6_MULTICAST_IF`, by the socket's family). ``MulticastInterface/any`` restores the
    /// default: the routing table decides.
    ///
    /// - Throws: ``IOError``: on an IPv4 socket `EADDRNOTAVAIL` if no interface has the address
    ///   or the index; on an IPv6 socket `ENODEV` for an unknown index, `EINVAL` for an address.
    public func setMulticastInterface(_ interface: MulticastInterface) throws(IOError) {
        if try isIPv6() {
            let operation = "setsockopt(IPV6_MULTICAST_IF) interface \(interface)"
            var index = CInt(bitPattern: try interface.ipv6Index(operation))
            try setOption(CInt(IPPROTO_IPV6), IPV6_MULTICAST_IF, &index, operation)
        } else {
            let operation = "setsockopt(IP_MULTICAST_IF) interface \(interface)"
            let (address, index) = try interface.ipv4Fields(operation)
            var request = ip_mreqn(imr_multiaddr: in_addr(s_addr: 0), imr_address: in_addr(s_addr: address), imr_ifindex: index)
            try setOption(CInt(IPPROTO_IP), IP_MULTICAST_IF, &request, operation)
        }
    }

    // MARK: Helpers

    /// Whether the socket is `AF_INET6` (`SO_DOMAIN`).
    private func isIPv6() throws(IOError) -> Bool {
        let domain: CInt = try handle.getOption(level: SOL_SOCKET, name: SO_DOMAIN, "getsockopt(SO_DOMAIN)")
        return domain == AF_INET6
    }

    /// `setsockopt` with a struct value and a described operation.
    private func setOption<Value>(_ level: CInt, _ name: CInt, _ value: inout Value, _ operation: String) throws(IOError) {
        _ = try handle.withFD("setsockopt") { (fd) throws(IOError) in
            try syscall("setsockopt", describedAs: operation) {
                withUnsafePointer(to: &value) { setsockopt(fd, level, name, $0, socklen_t(MemoryLayout<Value>.size)) }
            }
        }
    }
}
