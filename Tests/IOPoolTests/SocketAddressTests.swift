import Glibc
import Testing

@testable import IOPool

@Suite struct SocketAddressTests {
    // MARK: Parsing and formatting

    @Test(arguments: [
        "127.0.0.1:8080",
        "0.0.0.0:65535",
        "0.0.0.0:0",
        "255.255.255.255:1",
        "10.20.30.40:443",
    ])
    func ipv4RoundTrip(_ text: String) throws {
        let address = try SocketAddress(text)
        #expect(address.family == .ipv4)
        #expect(address.description == text)
        #expect(try SocketAddress(address.description) == address)
        #expect(try SocketAddress(host: address.host, port: address.port) == address)
    }

    @Test(arguments: [
        "[::1]:8080",
        "[::]:0",
        "[::ffff:1.2.3.4]:5",
        "[2001:db8::1]:65535",
        "[fe80::1%2]:443",
        "[1:2:3:4:5:6:7:8]:9",
    ])
    func ipv6RoundTrip(_ text: String) throws {
        let address = try SocketAddress(text)
        #expect(address.family == .ipv6)
        #expect(address.description == text)
        #expect(try SocketAddress(address.description) == address)
        #expect(try SocketAddress(host: address.host, port: address.port) == address)
    }

    @Test func hostAndPortProperties() throws {
        let v4 = try SocketAddress("192.168.1.10:8080")
        #expect(v4.host == "192.168.1.10")
        #expect(v4.port == 8080)

        let v6 = try SocketAddress("[::1]:80")
        #expect(v6.host == "::1")
        #expect(v6.port == 80)

        let scoped = try SocketAddress("[fe80::1%7]:80")
        #expect(scoped.host == "fe80::1%7")
    }

    @Test(arguments: [
        ("[0:0:0:0:0:0:0:1]:80", "[::1]:80"),
        ("[2001:DB8:0::1]:1", "[2001:db8::1]:1"),
        ("[fe80::1%0]:2", "[fe80::1]:2"),
        ("1.2.3.4:080", "1.2.3.4:80"),
        ("1.2.3.4:00000", "1.2.3.4:0"),
    ])
    func parsingNormalizes(_ input: String, _ canonical: String) throws {
        #expect(try SocketAddress(input).description == canonical)
    }

    @Test(arguments: [
        ("127.0.0.1", UInt16(80), "127.0.0.1:80"),
        ("::1", 80, "[::1]:80"),
        ("::", 0, "[::]:0"),
        ("fe80::1%3", 1, "[fe80::1%3]:1"),
        ("::ffff:10.0.0.1", 65535, "[::ffff:10.0.0.1]:65535"),
    ])
    func initHostPort(_ host: String, _ port: UInt16, _ expected: String) throws {
        let address = try SocketAddress(host: host, port: port)
        #expect(address.description == expected)
        #expect(address.port == port)
        #expect(try SocketAddress(expected) == address)
    }

    @Test func interfaceNameScope() throws {
        // "lo" exists on every Linux host; its index is whatever if_nametoindex says.
        let index = if_nametoindex("lo")
        try #require(index != 0)
        let address = try SocketAddress("[fe80::1%lo]:80")
        #expect(address.description == "[fe80::1%\(index)]:80")
        #expect(try SocketAddress(host: "fe80::1%lo", port: 80) == address)
    }

    @Test func factories() throws {
        #expect(SocketAddress.ipv4(192, 168, 0, 1, port: 9).description == "192.168.0.1:9")
        #expect(SocketAddress.loopbackIPv4(port: 80) == SocketAddress.ipv4(127, 0, 0, 1, port: 80))
        #expect(SocketAddress.loopbackIPv4(port: 80) == (try SocketAddress("127.0.0.1:80")))
        #expect(SocketAddress.loopbackIPv6(port: 80) == (try SocketAddress("[::1]:80")))
        #expect(SocketAddress.anyIPv4(port: 5).description == "0.0.0.0:5")
        #expect(SocketAddress.anyIPv6(port: 5).description == "[::]:5")
        #expect(SocketAddress.loopbackIPv4(port: 1).family == .ipv4)
        #expect(SocketAddress.loopbackIPv6(port: 1).family == .ipv6)
    }

    // MARK: Equality and hashing

    @Test func equalAddressesAreEqualAndHashAlike() throws {
        let pairs: [(SocketAddress, SocketAddress)] = [
            (try SocketAddress("127.0.0.1:80"), .loopbackIPv4(port: 80)),
            (try SocketAddress("[::1]:80"), .loopbackIPv6(port: 80)),
            (try SocketAddress("[0::0:1]:80"), try SocketAddress(host: "::1", port: 80)),
            (try SocketAddress("[fe80::1%2]:80"), try SocketAddress(host: "fe80::1%2", port: 80)),
        ]
        for (a, b) in pairs {
            #expect(a == b)
            #expect(a.hashValue == b.hashValue)
            #expect(Set([a, b]).count == 1)
        }
    }

    @Test func differentAddressesDiffer() throws {
        let all: [SocketAddress] = [
            try SocketAddress("127.0.0.1:80"),
            try SocketAddress("127.0.0.1:81"),  // port
            try SocketAddress("127.0.0.2:80"),  // address
            try SocketAddress("[::ffff:127.0.0.1]:80"),  // family (IPv4-mapped IPv6 is not IPv4)
            try SocketAddress("[::1]:80"),
            try SocketAddress("[::1]:81"),
            try SocketAddress("[::2]:80"),
            try SocketAddress("[fe80::1%1]:80"),  // scope id
            try SocketAddress("[fe80::1%2]:80"),
            try SocketAddress("[fe80::1]:80"),
        ]
        #expect(Set(all).count == all.count)
        for i in all.indices {
            for j in all.indices where i != j {
                #expect(all[i] != all[j], "\(all[i]) == \(all[j])")
            }
        }
    }

    // MARK: Errors

    @Test(arguments: [
        // The examples of the documentation, exactly.
        ("localhost:80", #"host "localhost" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#),
        ("1.2.3.4", #"missing ":port""#),
        ("1.2.3.4:70000", "port 70000 is out of range 0...65535"),
        ("[::1:80", #"missing "]""#),
        ("::1:80", #"IPv6 address must be in brackets, as "[::1]:80""#),
        // Empty parts.
        ("", "input is empty"),
        (":80", "host is empty"),
        ("[]:80", "host is empty"),
        ("1.2.3.4:", "port is empty"),
        ("[::1]:", "port is empty"),
        // Bad ports.
        ("1.2.3.4:+80", #"port "+80" must not have a "+" sign"#),
        ("[::1]:+1", #"port "+1" must not have a "+" sign"#),
        ("1.2.3.4:8x", #"port "8x" is not a decimal number"#),
        ("1.2.3.4:-1", #"port "-1" is not a decimal number"#),
        ("1.2.3.4: 80", #"port " 80" is not a decimal number"#),
        ("1.2.3.4:80 ", #"port "80 " is not a decimal number"#),
        ("1.2.3.4:http", #"port "http" is not a decimal number"#),
        ("1.2.3.4:65536", "port 65536 is out of range 0...65535"),
        ("[::1]:99999999999999999999", "port 99999999999999999999 is out of range 0...65535"),
        // Bad hosts.
        ("1.2.3:80", #"host "1.2.3" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#),
        ("1.2.3.256:80", #"host "1.2.3.256" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#),
        ("1.2.3.4\u{0}junk:80", #"host "1.2.3.4\0junk" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#),
        ("[example.com]:80", #"host "example.com" is not a numeric IPv6 address (no DNS lookup is done)"#),
        ("[1.2.3.4]:80", #""1.2.3.4" is an IPv4 address; only IPv6 addresses go in brackets, as "1.2.3.4:80""#),
        // IPv6 without brackets.
        ("fe80::1", #"IPv6 address must be in brackets, as "[fe80::1]:port""#),
        ("2001:db8::1:443", #"IPv6 address must be in brackets, as "[2001:db8::1]:443""#),
        // Junk around the brackets.
        ("[::1]", #"missing ":port""#),
        ("[::1]80", #"unexpected "80" after "]"; expected ":port""#),
        ("[::1]x:80", #"unexpected "x:80" after "]"; expected ":port""#),
        ("[::1]]:80", #"unexpected "]:80" after "]"; expected ":port""#),
        ("[::1]:80]", #"port "80]" is not a decimal number"#),
        // Scopes.
        ("[fe80::1%]:80", #"scope id after "%" is empty"#),
        ("[fe80::1%4294967296]:80", "scope id 4294967296 is out of range 0...4294967295"),
        ("[fe80::1%nosuchif0]:80", #"scope "nosuchif0" is neither a numeric scope id nor the name of a network interface"#),
    ])
    func parseErrors(_ input: String, _ reason: String) {
        #expect(throws: SocketAddressError(input: input, reason: reason)) {
            try SocketAddress(input)
        }
    }

    @Test(arguments: [
        ("", "host is empty"),
        ("localhost", #"host "localhost" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#),
        ("1.2.3.4:80", #"host "1.2.3.4:80" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#),
        ("::g", #"host "::g" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#),
        ("[::1]", #"host must not be in brackets; brackets belong only in "[host]:port" strings"#),
        ("fe80::1%", #"scope id after "%" is empty"#),
    ])
    func hostPortErrors(_ host: String, _ reason: String) {
        #expect(throws: SocketAddressError(input: host, reason: reason)) {
            try SocketAddress(host: host, port: 80)
        }
    }

    @Test func errorDescriptionQuotesTheInput() {
        let error = SocketAddressError(input: "1.2.3.4", reason: #"missing ":port""#)
        #expect(error.description == #""1.2.3.4": missing ":port""#)
        do {
            _ = try SocketAddress("localhost:80")
            Issue.record("parsed a host name")
        } catch {
            #expect(
                error.description
                    == #""localhost:80": host "localhost" is not a numeric IPv4 or IPv6 address (no DNS lookup is done)"#)
        }
    }

    // MARK: The C view

    @Test func withSockAddrIPv4() {
        let address = SocketAddress.ipv4(192, 168, 1, 2, port: 0x1F90)
        #expect(address.protocolFamily == AF_INET)
        let (family, length, bytes) = address.withSockAddr { pointer, length in
            (CInt(pointer.pointee.sa_family), length, Array(UnsafeRawBufferPointer(start: pointer, count: Int(length))))
        }
        #expect(family == AF_INET)
        #expect(Int(length) == MemoryLayout<sockaddr_in>.size)
        #expect(bytes[2...3] == [0x1F, 0x90])  // sin_port, network byte order
        #expect(bytes[4...7] == [192, 168, 1, 2])  // sin_addr
        #expect(bytes[8...].allSatisfy { $0 == 0 })  // sin_zero
    }

    @Test func withSockAddrIPv6() throws {
        let address = try SocketAddress("[2001:db8::102:304%5]:443")
        #expect(address.protocolFamily == AF_INET6)
        let (family, length, bytes) = address.withSockAddr { pointer, length in
            (CInt(pointer.pointee.sa_family), length, Array(UnsafeRawBufferPointer(start: pointer, count: Int(length))))
        }
        #expect(family == AF_INET6)
        #expect(Int(length) == MemoryLayout<sockaddr_in6>.size)
        #expect(bytes[2...3] == [0x01, 0xBB])  // sin6_port 443, network byte order
        #expect(bytes[4...7] == [0, 0, 0, 0])  // sin6_flowinfo
        #expect(Array(bytes[8..<24]) == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])  // sin6_addr
        let scope = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 24, as: UInt32.self) }
        #expect(scope == 5)  // sin6_scope_id, host byte order
    }

    @Test func withSockAddrRethrowsTypedErrors() {
        struct Marker: Error, Equatable {}
        #expect(throws: Marker()) {
            try SocketAddress.loopbackIPv4(port: 1).withSockAddr { (_, _) throws(Marker) -> Void in throw Marker() }
        }
    }

    /// Copies what withSockAddr gives into a `sockaddr_storage` full of garbage, as the kernel would.
    private static func storage(of address: SocketAddress) -> (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xA5) }
        let length = address.withSockAddr { pointer, length in
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: Int(length))) }
            return length
        }
        return (storage, length)
    }

    @Test(arguments: [
        "127.0.0.1:8080", "0.0.0.0:0", "255.255.255.255:65535",
        "[::1]:8080", "[::]:0", "[::ffff:1.2.3.4]:5", "[fe80::abcd%9]:1234", "[2001:db8::1]:65535",
    ])
    func initStorageReversesWithSockAddr(_ text: String) throws {
        let address = try SocketAddress(text)
        let (storage, length) = Self.storage(of: address)
        let decoded = try #require(SocketAddress(storage: storage, length: length))
        #expect(decoded == address)
        #expect(decoded.hashValue == address.hashValue)
        #expect(decoded.description == text)
    }

    @Test func initStorageIgnoresSinZero() throws {
        var (storage, length) = Self.storage(of: .loopbackIPv4(port: 80))
        withUnsafeMutableBytes(of: &storage) { bytes in
            for i in 8..<16 { bytes[i] = 0xFF }  // sin_zero garbage
        }
        #expect(SocketAddress(storage: storage, length: length) == .loopbackIPv4(port: 80))
    }

    @Test func initStorageRejectsOtherFamiliesAndShortLengths() {
        var unix = sockaddr_storage()
        unix.ss_family = sa_family_t(AF_UNIX)
        #expect(SocketAddress(storage: unix, length: socklen_t(MemoryLayout<sockaddr_storage>.size)) == nil)

        let (v4, v4Length) = Self.storage(of: .loopbackIPv4(port: 80))
        #expect(SocketAddress(storage: v4, length: v4Length - 1) == nil)
        let (v6, v6Length) = Self.storage(of: .loopbackIPv6(port: 80))
        #expect(SocketAddress(storage: v6, length: v6Length - 1) == nil)
    }

    // MARK: A real socket

    @Test(arguments: [CInt(SOCK_DGRAM.rawValue), CInt(SOCK_STREAM.rawValue)])
    func bindToLoopbackAndReadBack(_ type: CInt) throws {
        let requested = SocketAddress.loopbackIPv4(port: 0)
        let fd = socket(requested.protocolFamily, type | CInt(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0, "socket: errno \(errno)")
        defer { close(fd) }

        let bound = requested.withSockAddr { pointer, length in bind(fd, pointer, length) }
        try #require(bound == 0, "bind: errno \(errno)")

        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        try #require(named == 0, "getsockname: errno \(errno)")

        let local = try #require(SocketAddress(storage: storage, length: length))
        #expect(local.family == .ipv4)
        #expect(local.host == "127.0.0.1")
        #expect(local.port != 0)
        #expect(local == .loopbackIPv4(port: local.port))
    }
}
