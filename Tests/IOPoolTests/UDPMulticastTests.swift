import Glibc
@testable import IOPool
import SystemPackage
import Testing

/// UDP multicast options, on both pools.
///
/// What the loopback interface allows decides what runs by default (measured on Linux 6.18; `lo`
/// has no MULTICAST flag, as usual):
/// - IPv4 on `lo` (join on 127.0.0.1, `IP_MULTICAST_IF` 127.0.0.1): delivery, leave and re-join
///   are tested end to end.
/// - `IP_MULTICAST_LOOP` off cannot be shown on `lo`: a datagram sent out of `lo` comes back in
///   through `lo` whatever the option says (the kernel only consults it for real interfaces). By
///   default the option is tested by reading it back.
/// - IPv6 multicast cannot be sent through `lo` (`ENETUNREACH`, no multicast route); the
///   membership itself is tested through `/proc/net/igmp6`.
/// - The full behaviour (loopback off ⇒ not received, IPv6 delivery and leave) runs when
///   `IOPOOL_TEST_MULTICAST_INTERFACE` names a multicast interface with an IPv4 and an IPv6
///   address in an isolated network namespace: `.ci/multicast-netns.sh` sets one up (a tap device
///   without carrier, so nothing leaves the namespace). Tests never join a group on a real network.
///
/// A "not received" is a bounded wait (300 ms) followed by a check that makes a late arrival fail
/// the test: the socket re-joins and the next datagram it gets must be the one sent after the
/// re-join.
@Suite(.timeLimit(.minutes(1)))
struct UDPMulticastTests {
    enum Pool: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case io, stealing
        var testDescription: String { rawValue }
    }

    static let loopbackInterface = UDPSocket.MulticastInterface.address(.loopbackIPv4(port: 0))

    // MARK: IPv4 on lo

    @Test(arguments: Pool.allCases)
    func ipv4GroupOnLoopbackIsReceivedUntilLeft(pool: Pool) async throws {
        let group = randomIPv4Group()
        let problems = try await run(on: pool) { () async throws -> [String] in
            try await expectDeliveryUntilLeft(
                group: group, receiverInterface: Self.loopbackInterface, senderInterface: Self.loopbackInterface,
                sender: UDPSocket.bind(.loopbackIPv4(port: 0)))
        }
        #expect(problems == [])
    }

    @Test(arguments: Pool.allCases)
    func ipv4GroupJoinedByInterfaceIndex(pool: Pool) async throws {
        let group = randomIPv4Group()
        let lo = try UDPSocket.MulticastInterface.named("lo")
        let problems = try await run(on: pool) { () async throws -> [String] in
            try await expectDeliveryUntilLeft(
                group: group, receiverInterface: lo, senderInterface: lo, sender: UDPSocket.bind(.loopbackIPv4(port: 0)))
        }
        #expect(problems == [])
    }

    // MARK: Options

    @Test func ipv4SendingOptionsReadBack() throws {
        let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
        defer { socket.close() }
        #expect(try socket.multicastLoopback == true, "Linux's default")
        try socket.setMulticastLoopback(false)
        #expect(try socket.multicastLoopback == false)
        try socket.setMulticastLoopback(true)
        #expect(try socket.multicastLoopback == true)

        #expect(try socket.multicastTimeToLive == 1, "Linux's default")
        for ttl in [0, 7, 255] {
            try socket.setMulticastTimeToLive(ttl)
            #expect(try socket.multicastTimeToLive == ttl)
        }

        // IP_MULTICAST_IF reads back as the interface's address.
        try socket.setMulticastInterface(Self.loopbackInterface)
        let chosen: UInt32 = try socket.handle.getOption(level: CInt(IPPROTO_IP), name: IP_MULTICAST_IF, "getsockopt")
        #expect(UInt32(bigEndian: chosen) == 0x7F00_0001)
        try socket.setMulticastInterface(.any)
        let cleared: UInt32 = try socket.handle.getOption(level: CInt(IPPROTO_IP), name: IP_MULTICAST_IF, "getsockopt")
        #expect(cleared == 0)
    }

    @Test(.enabled(if: ipv6Available(), "no IPv6 here"))
    func ipv6SendingOptionsReadBack() throws {
        let socket = try UDPSocket.unbound(.ipv6)
        defer { socket.close() }
        try socket.setMulticastLoopback(false)
        #expect(try socket.multicastLoopback == false)
        let loop: CInt = try socket.handle.getOption(level: CInt(IPPROTO_IPV6), name: IPV6_MULTICAST_LOOP, "getsockopt")
        #expect(loop == 0, "the IPv6 option, not the IPv4 one, was set")
        try socket.setMulticastLoopback(true)
        #expect(try socket.multicastLoopback == true)

        try socket.setMulticastTimeToLive(9)
        #expect(try socket.multicastTimeToLive == 9)
        let hops: CInt = try socket.handle.getOption(level: CInt(IPPROTO_IPV6), name: IPV6_MULTICAST_HOPS, "getsockopt")
        #expect(hops == 9)

        let lo = try UDPSocket.MulticastInterface.named("lo")
        try socket.setMulticastInterface(lo)
        let index: CInt = try socket.handle.getOption(level: CInt(IPPROTO_IPV6), name: IPV6_MULTICAST_IF, "getsockopt")
        #expect(index == CInt("lo".withCString { if_nametoindex($0) }))
        #expect(ioErrno(Result { try socket.setMulticastInterface(Self.loopbackInterface) }) == .invalidArgument)
    }

    /// IPv6 multicast cannot be delivered through `lo`, but the membership is real: the kernel
    /// lists it in /proc/net/igmp6 until the socket leaves.
    @Test(.enabled(if: ipv6Available(), "no IPv6 here"))
    func ipv6MembershipOnLoopbackIsJoinedAndLeft() throws {
        let group = randomIPv6Group()
        let lo = try UDPSocket.MulticastInterface.named("lo")
        let socket = try UDPSocket.unbound(.ipv6)
        defer { socket.close() }
        #expect(!ipv6Memberships(interface: "lo").contains(group.host))
        try socket.joinMulticastGroup(group, interface: lo)
        #expect(ipv6Memberships(interface: "lo").contains(group.host))
        #expect(ioErrno(Result { try socket.joinMulticastGroup(group, interface: lo) }) == .addressInUse)
        try socket.leaveMulticastGroup(group, interface: lo)
        #expect(!ipv6Memberships(interface: "lo").contains(group.host))
        #expect(ioErrno(Result { try socket.leaveMulticastGroup(group, interface: lo) }) == .addressNotAvailable)
    }

    @Test func misuseIsAnIOErrorThatSaysWhat() throws {
        let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
        let group = randomIPv4Group()
        let unicast = SocketAddress.ipv4(10, 1, 2, 3, port: 0)

        let notMulticast = Result { try socket.joinMulticastGroup(unicast, interface: Self.loopbackInterface) }
        #expect(ioErrno(notMulticast) == .invalidArgument)
        #expect((notMulticast.failure as? IOError)?.operation == "setsockopt(IP_ADD_MEMBERSHIP) group 10.1.2.3 interface address 127.0.0.1")
        #expect((notMulticast.failure as? IOError)?.detail?.contains("not an IPv4 multicast address") == true)

        // Leaving a group never joined: the kernel's EADDRNOTAVAIL, with the operation named.
        let notMember = Result { try socket.leaveMulticastGroup(group, interface: Self.loopbackInterface) }
        #expect(ioErrno(notMember) == .addressNotAvailable)
        #expect((notMember.failure as? IOError)?.operation.hasPrefix("setsockopt(IP_DROP_MEMBERSHIP) group \(group.host)") == true)

        try socket.joinMulticastGroup(group, interface: Self.loopbackInterface)
        #expect(ioErrno(Result { try socket.joinMulticastGroup(group, interface: Self.loopbackInterface) }) == .addressInUse)

        // An interface address no interface has.
        let nowhere = UDPSocket.MulticastInterface.address(.ipv4(192, 0, 2, 254, port: 0))
        #expect(ioErrno(Result { try socket.setMulticastInterface(nowhere) }) == .addressNotAvailable)

        #expect(throws: IOError(
            errno: .operationNotSupportedByDevice, operation: "if_nametoindex(no-such-if0)", detail: "no network interface is named \"no-such-if0\""
        )) { try UDPSocket.MulticastInterface.named("no-such-if0") }

        // An IPv6 membership names its interface by index.
        let v6 = Result { try socket.joinMulticastGroup(randomIPv6Group(), interface: .address(.loopbackIPv6(port: 0))) }
        #expect(ioErrno(v6) == .invalidArgument)
        let v6NotMulticast = Result { try socket.joinMulticastGroup(.loopbackIPv6(port: 0)) }
        #expect(ioErrno(v6NotMulticast) == .invalidArgument)

        socket.close()
        #expect(ioErrno(Result { try socket.joinMulticastGroup(group, interface: Self.loopbackInterface) }) == .badFileDescriptor)
        #expect(ioErrno(Result { try socket.setMulticastLoopback(true) }) == .badFileDescriptor)
        #expect(ioErrno(Result { try socket.multicastTimeToLive }) == .badFileDescriptor)
    }

    // MARK: On a real multicast interface (opt-in, isolated namespace)

    /// Loopback off ⇒ this host's members do not get the datagram; on ⇒ they do. Needs an interface
    /// where the kernel consults `IP_MULTICAST_LOOP` (not `lo`).
    @Test(.enabled(if: isolatedInterface() != nil, "set IOPOOL_TEST_MULTICAST_INTERFACE (see .ci/multicast-netns.sh)"),
          arguments: Pool.allCases)
    func ipv4LoopbackOffIsNotReceived(pool: Pool) async throws {
        let interface = try UDPSocket.MulticastInterface.named(isolatedInterface()!)
        let group = randomIPv4Group()
        let problems = try await run(on: pool) { () async throws -> [String] in
            var problems = try await expectDeliveryUntilLeft(
                group: group, receiverInterface: interface, senderInterface: interface, sender: UDPSocket.unbound(.ipv4))
            problems += try await expectLoopbackOffNotReceived(
                group: group, interface: interface, sender: UDPSocket.unbound(.ipv4))
            return problems
        }
        #expect(problems == [])
    }

    @Test(.enabled(if: isolatedInterface() != nil, "set IOPOOL_TEST_MULTICAST_INTERFACE (see .ci/multicast-netns.sh)"),
          arguments: Pool.allCases)
    func ipv6GroupIsReceivedUntilLeftAndNotWithLoopbackOff(pool: Pool) async throws {
        let interface = try UDPSocket.MulticastInterface.named(isolatedInterface()!)
        let group = randomIPv6Group()
        let problems = try await run(on: pool) { () async throws -> [String] in
            var problems = try await expectDeliveryUntilLeft(
                group: group, receiverInterface: interface, senderInterface: interface, sender: UDPSocket.unbound(.ipv6))
            problems += try await expectLoopbackOffNotReceived(
                group: group, interface: interface, sender: UDPSocket.unbound(.ipv6))
            return problems
        }
        #expect(problems == [])
    }
}

// MARK: - Scenarios

/// A receiver bound to `group` (a free port) joins it; `sender` (multicast interface set, loopback
/// on, TTL 0 so that nothing leaves the host) sends "one": received, from the sender. The receiver
/// leaves; "two" is not received within 300 ms. It re-joins; "three" is the next datagram it gets
/// (a late "two" would come first). Returns the problems seen.
private func expectDeliveryUntilLeft(
    group: SocketAddress, receiverInterface: UDPSocket.MulticastInterface,
    senderInterface: UDPSocket.MulticastInterface, sender: UDPSocket
) async throws -> [String] {
    let receiver = try UDPSocket.bind(group)
    defer { receiver.close(); sender.close() }
    let target = try receiver.localAddress
    try receiver.joinMulticastGroup(target, interface: receiverInterface)
    try sender.setMulticastInterface(senderInterface)
    try sender.setMulticastLoopback(true)
    try sender.setMulticastTimeToLive(0)
    var problems: [String] = []

    try await sender.send(Array("one".utf8), to: target)
    let one = try await receiveWithin(.seconds(10), receiver)
    if one?.bytes != Array("one".utf8) { problems.append("joined: got \(describe(one)) instead of \"one\"") }
    let senderAddress = try sender.localAddress
    if let one, one.sender.port != senderAddress.port { problems.append("joined: sender \(one.sender), expected port \(senderAddress.port)") }

    try receiver.leaveMulticastGroup(target, interface: receiverInterface)
    try await sender.send(Array("two".utf8), to: target)
    if let two = try await receiveWithin(.milliseconds(300), receiver) {
        problems.append("after leave: got \(describe(two))")
    }

    try receiver.joinMulticastGroup(target, interface: receiverInterface)
    try await sender.send(Array("three".utf8), to: target)
    let three = try await receiveWithin(.seconds(10), receiver)
    if three?.bytes != Array("three".utf8) { problems.append("re-joined: got \(describe(three)) instead of \"three\"") }
    return problems
}

/// With loopback off, a member on this host does not get the datagram; turned on again, it does
/// (and that datagram is the next one it gets).
private func expectLoopbackOffNotReceived(
    group: SocketAddress, interface: UDPSocket.MulticastInterface, sender: UDPSocket
) async throws -> [String] {
    let receiver = try UDPSocket.bind(group)
    defer { receiver.close(); sender.close() }
    let target = try receiver.localAddress
    try receiver.joinMulticastGroup(target, interface: interface)
    try sender.setMulticastInterface(interface)
    try sender.setMulticastTimeToLive(0)
    var problems: [String] = []

    try sender.setMulticastLoopback(false)
    try await sender.send(Array("off".utf8), to: target)
    if let off = try await receiveWithin(.milliseconds(300), receiver) {
        problems.append("loopback off: got \(describe(off))")
    }
    try sender.setMulticastLoopback(true)
    try await sender.send(Array("on".utf8), to: target)
    let on = try await receiveWithin(.seconds(10), receiver)
    if on?.bytes != Array("on".utf8) { problems.append("loopback on: got \(describe(on)) instead of \"on\"") }
    return problems
}

// MARK: - Helpers

/// Runs `body` in a task on a fresh pool of `kind` (so that the sockets register with that pool's
/// reactor), then shuts the pool down.
func run<Success: Sendable>(
    on kind: UDPMulticastTests.Pool, _ body: @escaping @Sendable () async throws -> Success
) async throws -> Success {
    switch kind {
    case .io:
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let task = try pool.spawn { () async throws -> Success in
            guard IOThread.current != nil else { throw TestFailure("not on an IOThread") }
            return try await body()
        }
        let result = await outcome(of: task)
        await pool.shutdown()
        return try result.get()
    case .stealing:
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let task = try pool.spawn { () async throws -> Success in
            guard WorkStealingPool.current != nil else { throw TestFailure("not on a WorkStealingPool worker") }
            return try await body()
        }
        let result = await outcome(of: task)
        await pool.shutdown()
        return try result.get()
    }
}

private func outcome<Success: Sendable>(of task: Task<Success, any Error>) async -> Result<Success, any Error> {
    do {
        return .success(try await value(of: task) {})
    } catch {
        return .failure(error)
    }
}

/// The next datagram, or `nil` if none arrives within `limit` (the pending receive is cancelled).
private func receiveWithin(
    _ limit: Duration, _ socket: UDPSocket
) async throws -> (bytes: [UInt8], sender: SocketAddress, truncated: Bool)? {
    do {
        return try await withTimeout(limit) { try await socket.receive() }
    } catch is TimeoutError {
        return nil
    }
}

private func describe(_ datagram: (bytes: [UInt8], sender: SocketAddress, truncated: Bool)?) -> String {
    guard let datagram else { return "nothing" }
    return "\"\(String(decoding: datagram.bytes, as: UTF8.self))\" from \(datagram.sender)"
}

/// A group in 239.255.0.0/16 (IPv4 organization-local scope), random so that concurrent tests
/// and processes do not share one.
private func randomIPv4Group() -> SocketAddress {
    .ipv4(239, 255, UInt8.random(in: 0...255), UInt8.random(in: 1...254), port: 0)
}

/// A group in ff15::/16 (IPv6 site-local scope, no scope id needed), random as above.
private func randomIPv6Group() -> SocketAddress {
    let words = (0..<2).map { _ in String(UInt16.random(in: 1...UInt16.max), radix: 16) }
    return try! SocketAddress("[ff15::\(words[0]):\(words[1])]:0")
}

/// The IPv6 groups joined on `interface`, as /proc/net/igmp6 lists them, formatted like
/// `SocketAddress.host`.
private func ipv6Memberships(interface: String) -> Set<String> {
    guard let text = try? readText("/proc/net/igmp6") else { return [] }
    var groups: Set<String> = []
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3, fields[1] == interface, fields[2].count == 32 else { continue }
        let hex = Array(fields[2])
        let words = stride(from: 0, to: 32, by: 4).map { String(hex[$0..<$0 + 4]) }.joined(separator: ":")
        if let address = try? SocketAddress("[\(words)]:0") { groups.insert(address.host) }
    }
    return groups
}

private func readText(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw TestFailure("cannot open \(path)") }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        result += buffer[..<count]
    }
    return String(decoding: result, as: UTF8.self)
}

private func ipv6Available() -> Bool {
    guard let socket = try? UDPSocket.bind(.loopbackIPv6(port: 0)) else { return false }
    socket.close()
    return true
}

/// The interface named by `IOPOOL_TEST_MULTICAST_INTERFACE`, if set and present.
private func isolatedInterface() -> String? {
    guard let name = getenv("IOPOOL_TEST_MULTICAST_INTERFACE").map({ String(cString: $0) }), !name.isEmpty else { return nil }
    return name
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
