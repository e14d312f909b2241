import Glibc
@testable import IOPool
import SystemPackage
import Testing

/// `TCPStream.connect(host:port:from:timeout:)`, `connect(to:from:timeout:)` and their race.
///
/// An address that never answers is a `BlackholedListener` (a full accept queue: SYNs dropped).
/// Sockets are checked closed by inode: `pendingConnectSockets(toPort:)` lists this process's
/// open descriptors that are TCP sockets in SYN_SENT towards a port.
@Suite(.timeLimit(.minutes(1)))
struct HappyEyeballsTests {
    @Test func addressesAlternateFamiliesStartingWithTheFirstOnesFamily() throws {
        let a6 = try SocketAddress("[::1]:1"), b6 = try SocketAddress("[::2]:1")
        let a4 = try SocketAddress("10.0.0.1:1"), b4 = try SocketAddress("10.0.0.2:1"), c4 = try SocketAddress("10.0.0.3:1")
        #expect(TCPStream.interleavedByFamily([a6, b6, a4, b4, c4]) == [a6, a4, b6, b4, c4])
        #expect(TCPStream.interleavedByFamily([a4, b4, c4, a6]) == [a4, a6, b4, c4])
        #expect(TCPStream.interleavedByFamily([a4, a6, b4]) == [a4, a6, b4])
        #expect(TCPStream.interleavedByFamily([]) == [])
    }

    @Test(arguments: NetPlace.allCases)
    func connectByNameToLocalhost(place: NetPlace) async throws {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let port = try listener.localAddress.port
        let remote = try await place.run {
            let stream = try await TCPStream.connect(host: "localhost", port: port, timeout: .seconds(45))
            defer { stream.close() }
            return try stream.remoteAddress
        }
        #expect(remote == .loopbackIPv4(port: port))
        _ = try await listener.accept()
    }

    /// Both families: numeric hosts go through the same path (localhost is IPv4-only in this
    /// machine's /etc/hosts; see ResolverTests).
    @Test(arguments: NetPlace.allCases)
    func connectByNameToBothLoopbackFamilies(place: NetPlace) async throws {
        for local in [SocketAddress.loopbackIPv6(port: 0), .loopbackIPv4(port: 0)] {
            let listener = try TCPListener.bind(local)
            defer { listener.close() }
            let address = try listener.localAddress
            let remote = try await place.run {
                let stream = try await TCPStream.connect(host: address.host, port: address.port)
                defer { stream.close() }
                try await stream.write([42])
                return try stream.remoteAddress
            }
            #expect(remote == address)
            let accepted = try await listener.accept()
            #expect(try await readExactly(accepted, 1) == [42])
        }
    }

    /// RFC 8305: the first address does not answer within the attempt delay, so the next one is
    /// tried alongside and wins; the first attempt is cancelled and its socket closed.
    @Test(arguments: NetPlace.allCases)
    func aFirstAddressThatNeverAnswersLosesToTheSecond(place: NetPlace) async throws {
        let blackhole = try await BlackholedListener(.ipv6)
        defer { blackhole.close() }
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let silent = try blackhole.address, good = try listener.localAddress
        let remote = try await place.run {
            let stream = try await TCPStream.race(.addresses([silent, good]), describedAs: "test", from: nil, timeout: .seconds(45))
            defer { stream.close() }
            return try stream.remoteAddress
        }
        #expect(remote == good)
        #expect(pendingConnectSockets(toPort: silent.port).isEmpty, "the losing attempt's socket is still open")
    }

    /// RFC 8305 §5: a failed attempt starts the next one at once, without the attempt delay
    /// (here an hour, longer than the timeout: waiting it out would time out).
    @Test(arguments: NetPlace.allCases)
    func aFailedAttemptStartsTheNextAtOnce(place: NetPlace) async throws {
        let refused = try refusedAddress(.ipv6)
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let good = try listener.localAddress
        let remote = try await place.run {
            let stream = try await TCPStream.race(
                .addresses([refused, good]), describedAs: "test", from: nil, timeout: .seconds(45), attemptDelay: .seconds(3600))
            defer { stream.close() }
            return try stream.remoteAddress
        }
        #expect(remote == good)
    }

    @Test(arguments: NetPlace.allCases)
    func everyAddressFailingListsEachAddressAndItsError(place: NetPlace) async throws {
        let refused6 = try refusedAddress(.ipv6), refused4 = try refusedAddress(.ipv4)
        let result = await Result {
            try await place.run { try await TCPStream.race(.addresses([refused6, refused4]), describedAs: "example:1", from: nil, timeout: nil) }
        }
        guard case .failure(let error as IOError) = result else { Issue.record("expected IOError, got \(result)"); return }
        #expect(error.errno == .connectionRefused)
        #expect(error.operation == "connect to example:1")
        let detail = error.detail ?? ""
        #expect(detail.hasPrefix("every address failed: "))
        #expect(detail.contains("\(refused6): \(Errno.connectionRefused)"))
        #expect(detail.contains("\(refused4): \(Errno.connectionRefused)"))
    }

    @Test(arguments: NetPlace.allCases)
    func aSingleRefusedAddressThrowsItsOwnError(place: NetPlace) async throws {
        let refused = try refusedAddress(.ipv4)
        let result = await Result { try await place.run { try await TCPStream.connect(host: "127.0.0.1", port: refused.port) } }
        #expect(describe(result.thrownError) == "IOError ECONNREFUSED connect to \(refused)")
    }

    @Test(arguments: NetPlace.allCases)
    func aNameThatDoesNotResolveThrowsNameResolutionError(place: NetPlace) async throws {
        let result = await Result { try await place.run { try await TCPStream.connect(host: "nowhere.invalid", port: 80) } }
        guard case .failure(let error as NameResolutionError) = result else { Issue.record("expected NameResolutionError, got \(result)"); return }
        #expect(error.host == "nowhere.invalid")
    }

    /// A timeout cancels the attempts, closes their sockets and says what each did.
    @Test(arguments: NetPlace.allCases)
    func aTimeoutThrowsETIMEDOUTAndClosesTheAttempts(place: NetPlace) async throws {
        let blackhole = try await BlackholedListener(.ipv4)
        defer { blackhole.close() }
        let silent = try blackhole.address
        let (byAddress, byName) = try await place.run {
            (
                await Result { try await TCPStream.connect(to: silent, timeout: .milliseconds(100)) },
                await Result { try await TCPStream.connect(host: "127.0.0.1", port: silent.port, timeout: .milliseconds(100)) }
            )
        }
        for (result, target) in [(byAddress, "\(silent)"), (byName, "127.0.0.1:\(silent.port)")] {
            guard case .failure(let error as IOError) = result else { Issue.record("expected IOError, got \(result)"); continue }
            #expect(error.errno == .timedOut)
            #expect(error.operation == "connect to \(target)")
            #expect(error.detail == "no connection within 0.1 seconds; tried \(silent): no answer")
        }
        #expect(pendingConnectSockets(toPort: silent.port).isEmpty, "an attempt's socket is still open")
    }

    /// Cancelled while the kernel still retries the SYN: `CancellationError`, the socket closed
    /// (the attempt's descriptor, seen in SYN_SENT before, is gone from /proc/self/fd after).
    @Test(arguments: NetPlace.allCases)
    func cancellationMidConnectClosesTheSocket(place: NetPlace) async throws {
        let blackhole = try await BlackholedListener(.ipv4)
        defer { blackhole.close() }
        let silent = try blackhole.address
        for byName in [false, true] {
            let outcome = try await place.run {
                let connecting = Task {
                    byName ? try await TCPStream.connect(host: "127.0.0.1", port: silent.port) : try await TCPStream.connect(to: silent)
                }
                try await waitUntil("the connect is pending", deadline: .seconds(45)) { !pendingConnectSockets(toPort: silent.port).isEmpty }
                connecting.cancel()
                return await connecting.result
            }
            #expect(isCancellation(outcome), "byName \(byName)")
            #expect(pendingConnectSockets(toPort: silent.port).isEmpty, "byName \(byName): the socket is still open")
        }
    }

    @Test(arguments: NetPlace.allCases)
    func bindBeforeConnect(place: NetPlace) async throws {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let address = try listener.localAddress
        let local = try await place.run {
            let stream = try await TCPStream.connect(to: address, from: .loopbackIPv4(port: 0), timeout: .seconds(45))
            defer { stream.close() }
            return try stream.localAddress
        }
        #expect(local.host == "127.0.0.1" && local.port != 0)
        let accepted = try await listener.accept()
        #expect(try accepted.remoteAddress == local)

        let mismatch = await Result { try await TCPStream.connect(to: address, from: .loopbackIPv6(port: 0)) }
        #expect(describe(mismatch.thrownError).hasPrefix("IOError EAFNOSUPPORT connect to \(address)"))
        let noneOfTheFamily = await Result { try await TCPStream.connect(host: "127.0.0.1", port: address.port, from: .loopbackIPv6(port: 0)) }
        #expect(describe(noneOfTheFamily.thrownError).hasPrefix("IOError EAFNOSUPPORT connect to 127.0.0.1:\(address.port)"))
    }

    /// A connect that meets its own socket (TCP's simultaneous open, when the local port is the
    /// port connected to and nothing listens there) is refused, not returned as a stream whose
    /// peer is itself. The kernel's own choice of that port is rare (it made a refused-address
    /// test pass a connection now and then); binding that port first makes it certain.
    @Test(arguments: NetPlace.allCases)
    func aConnectThatReachesItsOwnSocketIsRefused(place: NetPlace) async throws {
        let target = try refusedAddress(.ipv4)
        let result = await Result {
            try await place.run { try await TCPStream.connect(to: target, from: target, timeout: .seconds(45)) }
        }
        let error = result.thrownError
        #expect(describe(error).hasPrefix("IOError ECONNREFUSED connect to \(target)"), "\(error)")
        #expect((error as? IOError)?.detail?.contains("connected to itself") == true)
        #expect(openTCPSockets(toPort: target.port).isEmpty)  // the self-connected socket is closed
    }
}

extension Result {
    /// The error, or a `TestFailure` saying that it succeeded.
    var thrownError: any Error {
        switch self {
        case .success(let value): return TestFailure("succeeded with \(value)")
        case .failure(let error): return error
        }
    }
}
