import Glibc
@testable import IOPool
import SystemPackage
import Testing

/// Socket options (each read back with getsockopt, through the typed getters and through
/// `withUnsafeFileDescriptor`), adopting descriptors, and systemd socket activation.
@Suite(.timeLimit(.minutes(1)))
struct SocketOptionTests {
    /// A connected pair over loopback: (client, server side).
    private func connectedPair() async throws -> (TCPStream, TCPStream) {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let client = try await TCPStream.connect(to: try listener.localAddress)
        return (client, try await listener.accept())
    }

    private func rawInt(_ socket: TCPStream, _ level: CInt, _ name: CInt) throws -> CInt {
        try socket.withUnsafeFileDescriptor { fd in
            var value: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            guard getsockopt(fd, level, name, &value, &length) == 0 else { throw TestFailure("getsockopt failed: errno \(errno)") }
            return value
        }
    }

    @Test func keepAliveIsSetReadBackAndDisabled() async throws {
        let (client, server) = try await connectedPair()
        defer { client.close(); server.close() }
        #expect(try client.keepAlive == nil)
        try client.setKeepAlive(TCPKeepAlive(idle: .seconds(30), interval: .milliseconds(4500), count: 4))
        #expect(try client.keepAlive == TCPKeepAlive(idle: .seconds(30), interval: .seconds(5), count: 4))  // rounded up
        #expect(try rawInt(client, SOL_SOCKET, SO_KEEPALIVE) == 1)
        #expect(try rawInt(client, CInt(IPPROTO_TCP), TCP_KEEPIDLE) == 30)
        #expect(try rawInt(client, CInt(IPPROTO_TCP), TCP_KEEPCNT) == 4)
        try client.setKeepAlive(nil)
        #expect(try client.keepAlive == nil)
    }

    @Test func keepAliveOutOfTheKernelsRangeThrowsEINVAL() async throws {
        let (client, server) = try await connectedPair()
        defer { client.close(); server.close() }
        let error = Result { () throws(IOError) in try client.setKeepAlive(TCPKeepAlive(idle: .seconds(1), interval: .seconds(1), count: 1000)) }
        #expect(describe(error.thrownError) == "IOError EINVAL setsockopt(TCP_KEEPCNT)")
    }

    @Test func bufferSizesAreSetAndReadBackAsTheKernelKeepsThem() async throws {
        let (client, server) = try await connectedPair()
        defer { client.close(); server.close() }
        try client.setSendBufferSize(65536)
        try client.setReceiveBufferSize(32768)
        // Linux doubles the value for its bookkeeping (gVisor too); the getter reports the kernel's.
        #expect(try client.sendBufferSize == rawInt(client, SOL_SOCKET, SO_SNDBUF))
        #expect(try client.sendBufferSize >= 65536)
        #expect(try client.receiveBufferSize >= 32768)
        #expect(describe(Result { () throws(IOError) in try client.setSendBufferSize(0) }.thrownError).hasPrefix("IOError EINVAL setsockopt(SO_SNDBUF)"))
    }

    @Test func noDelayReadsBack() async throws {
        let (client, server) = try await connectedPair()
        defer { client.close(); server.close() }
        try client.setNoDelay(true)
        #expect(try client.noDelay)
        try client.setNoDelay(false)
        #expect(try !client.noDelay)
    }

    /// Linger zero: close resets the connection; the peer's read fails with ECONNRESET.
    @Test(arguments: NetPlace.allCases)
    func lingerZeroResetsOnClose(place: NetPlace) async throws {
        let (client, server) = try await connectedPair()
        defer { server.close() }
        #expect(try client.linger == nil)
        try client.setLinger(.zero)
        #expect(try client.linger == .zero)
        try client.setLinger(.milliseconds(1500))
        #expect(try client.linger == .seconds(2))
        try client.setLinger(.zero)
        client.close()
        let outcome = try await place.run { await Result { try await server.read() } }
        #expect(ioErrno(outcome) == .connectionReset)
    }

    @Test func listenerOptionsReadBack() async throws {
        let plain = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { plain.close() }
        #expect(try plain.reuseAddress && !plain.reusePort)
        let shared = try TCPListener.bind(.loopbackIPv4(port: 0), reusePort: true)
        defer { shared.close() }
        #expect(try shared.reusePort)
        try shared.setReceiveBufferSize(1 << 20)
        #expect(try shared.receiveBufferSize >= 1 << 20)

        let v6Only = try TCPListener.bind(.loopbackIPv6(port: 0), v6Only: true)
        defer { v6Only.close() }
        #expect(try v6Only.isV6Only)
        // v6Only false is what lets an IPv6 socket bind an IPv4-mapped address and take IPv4
        // connections (read back after a bind to ::1 it is kernel-dependent: gVisor sets it then).
        let mapped = try SocketAddress("[::ffff:127.0.0.1]:0")
        let dual = try TCPListener.bind(mapped, v6Only: false)
        defer { dual.close() }
        #expect(try !dual.isV6Only)
        let client = try await TCPStream.connect(to: .loopbackIPv4(port: try dual.localAddress.port))
        defer { client.close() }
        #expect(try await dual.accept().remoteAddress.host == "::ffff:127.0.0.1")
        #expect(describe(Result { () throws(IOError) in try TCPListener.bind(mapped, v6Only: true) }.thrownError) == "IOError EINVAL bind to \(mapped)")
        #expect(describe(Result { () throws(IOError) in try TCPListener.bind(.loopbackIPv4(port: 0), v6Only: true) }.thrownError).hasPrefix("IOError EINVAL bind to 127.0.0.1:0"))
    }

    @Test func udpAndUnixOptionsReadBack() throws {
        let udp = try UDPSocket.bind(.loopbackIPv6(port: 0))
        defer { udp.close() }
        try udp.setSendBufferSize(1 << 16)
        #expect(try udp.sendBufferSize >= 1 << 16)
        _ = try udp.isV6Only
        let (a, b) = try UnixStream.pair()
        defer { a.close(); b.close() }
        try a.setSendBufferSize(1 << 16)
        try a.setReceiveBufferSize(1 << 16)
        #expect(try a.sendBufferSize >= 1 << 16 && a.receiveBufferSize >= 1 << 16)
    }

    @Test func withUnsafeFileDescriptorThrowsEBADFOnceClosedAndPassesBodyErrors() async throws {
        let (client, server) = try await connectedPair()
        server.close()
        #expect(throws: TestFailure.self) { try client.withUnsafeFileDescriptor { _ in throw TestFailure("body") } }
        client.close()
        var called = false
        let result = Result { try client.withUnsafeFileDescriptor { _ in called = true } }
        #expect(describe(result.thrownError) == "IOError EBADF withUnsafeFileDescriptor")
        #expect(!called)
    }

    // MARK: Adopting

    /// A listener made with plain syscalls (blocking, as an inherited one may be) is adopted,
    /// made non-blocking, and serves on every place.
    @Test(arguments: NetPlace.allCases)
    func anAdoptedListenerAndStreamServe(place: NetPlace) async throws {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(bound == 0 && listen(fd, 16) == 0)
        let listener = try TCPListener(adopting: fd)
        defer { listener.close() }
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        let target = try listener.localAddress

        let clientFD = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        let connected = target.withUnsafeSockAddr { connect(clientFD, $0, $1) }
        #expect(connected == 0)
        let client = try TCPStream(adopting: clientFD)
        defer { client.close() }
        let echoed = try await place.run {
            let accepted = try await listener.accept()
            defer { accepted.close() }
            try await client.write([1, 2, 3])
            return try await readExactly(accepted, 3)
        }
        #expect(echoed == [1, 2, 3])
    }

    @Test func adoptionRejectsWhatTheTypeDoesNotModelAndLeavesTheDescriptorOpen() throws {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let udp = try UDPSocket.unbound()
        defer { udp.close() }
        var pipeFDs: [CInt] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }

        func failure(_ make: () throws -> Void) -> String { describe(Result(catching: make).thrownError) }
        try listener.withUnsafeFileDescriptor { fd in
            #expect(failure { _ = try TCPStream(adopting: fd) } == "IOError EINVAL adopt descriptor \(fd) as a TCP stream")
            #expect(failure { _ = try UnixListener(adopting: fd) } == "IOError EAFNOSUPPORT adopt descriptor \(fd) as a Unix listener")
            #expect(fcntl(fd, F_GETFD) != -1, "still open")
        }
        try udp.withUnsafeFileDescriptor { fd in
            #expect(failure { _ = try TCPListener(adopting: fd) } == "IOError errno \(EPROTOTYPE) adopt descriptor \(fd) as a TCP listener")
        }
        #expect(failure { _ = try TCPStream(adopting: pipeFDs[0]) } == "IOError errno \(ENOTSOCK) adopt descriptor \(pipeFDs[0]) as a TCP stream")
        #expect(failure { _ = try TCPStream(adopting: -1) } == "IOError EBADF adopt descriptor -1 as a TCP stream")
    }

    // MARK: systemd socket activation

    @Test func socketActivationParsesTheEnvironment() throws {
        let first = try TCPListener.bind(.loopbackIPv4(port: 0)), second = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { first.close(); second.close() }
        // Three consecutive free descriptor numbers (two passed, as systemd passes them from 3, and
        // one announced but not open), at the top of the descriptor limit: the kernel hands out
        // the lowest free number, so tests running beside this one (a few thousand sockets each)
        // never reach them. Low numbers (the first free ones above 700, as this test took before)
        // raced them: between the check and `dup2`, another test's socket could take the number,
        // and `dup2` then failed with EBUSY, or silently closed that socket.
        // The soft limit is raised to the hard one first (as the tests that open thousands of
        // sockets do), so that no later raise can bring their numbers up to these.
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            #expect(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        }
        var base = CInt(clamping: min(limit.rlim_cur, 1 << 16)) - 8
        #expect(base > 700, "RLIMIT_NOFILE \(limit.rlim_cur) leaves no room above the descriptors tests open")
        while (0..<3).contains(where: { fcntl(base + $0, F_GETFD) != -1 }) { base -= 3 }
        try first.withUnsafeFileDescriptor { #expect(dup2($0, base) == base) }
        try second.withUnsafeFileDescriptor { #expect(dup2($0, base + 1) == base + 1) }
        defer { close(base); close(base + 1) }

        let environment = ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:admin"]
        let descriptors = try SocketActivation.listenDescriptors(environment: { environment[$0] }, pid: getpid(), first: base)
        #expect(descriptors == [.init(fd: base, name: "http"), .init(fd: base + 1, name: "admin")])
        #expect(fcntl(base, F_GETFD) & FD_CLOEXEC != 0)

        // Not for this process, or not activated: nothing.
        #expect(try SocketActivation.listenDescriptors(environment: { ["LISTEN_PID": "1", "LISTEN_FDS": "2"][$0] }, pid: getpid(), first: base) == [])
        #expect(try SocketActivation.listenDescriptors(environment: { _ in nil }, pid: getpid(), first: base) == [])
        // Malformed, or announcing a descriptor that is not open.
        let bad = Result { () throws(IOError) in try SocketActivation.listenDescriptors(environment: { ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "x"][$0] }, pid: getpid(), first: base) }
        #expect(describe(bad.thrownError) == "IOError EINVAL socket activation")
        let missing = Result { () throws(IOError) in try SocketActivation.listenDescriptors(environment: { ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "3"][$0] }, pid: getpid(), first: base) }
        #expect(describe(missing.thrownError) == "IOError EBADF socket activation")
        // (The public form reads and unsets this process's environment; not called here: setenv
        // and unsetenv race other threads' getenv, getaddrinfo's among them, in a parallel test run.)
    }
}
