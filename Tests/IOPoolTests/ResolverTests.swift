import Dispatch
import Glibc
@testable import IOPool
import Synchronization
import Testing

/// `SocketAddress.resolve(host:port:)` and `SocketAddress` from a C `sockaddr`.
///
/// IPv6: this machine has `::1` on its loopback interface, but /etc/hosts maps `localhost` to
/// 127.0.0.1 only, so "localhost" resolves to IPv4 here; the IPv6 path is tested with the numeric
/// `::1` (getaddrinfo parses it without a lookup), and `localhost`'s answer is compared with
/// getaddrinfo's own, whatever families that holds.
@Suite(.timeLimit(.minutes(1)))
struct ResolverTests {
    @Test(arguments: NetPlace.allCases)
    func localhostResolvesToGetaddrinfosAddressesInItsOrder(place: NetPlace) async throws {
        let resolved = try await place.run { try await SocketAddress.resolve(host: "localhost", port: 8080) }
        #expect(resolved.contains(.loopbackIPv4(port: 8080)))
        #expect(resolved == (try SocketAddress.lookUp(host: "localhost", port: 8080)))
        #expect(resolved.allSatisfy { $0.port == 8080 })
        #expect(Set(resolved).count == resolved.count, "no duplicates")
    }

    @Test(arguments: NetPlace.allCases)
    func numericHostsOfBothFamiliesResolveWithoutALookup(place: NetPlace) async throws {
        let (v6, bracketed, v4) = try await place.run {
            (
                try await SocketAddress.resolve(host: "::1", port: 443),
                try await SocketAddress.resolve(host: "[::1]", port: 443),
                try await SocketAddress.resolve(host: "127.0.0.1", port: 443)
            )
        }
        #expect(v6 == [.loopbackIPv6(port: 443)])
        #expect(bracketed == [.loopbackIPv6(port: 443)])
        #expect(v4 == [.loopbackIPv4(port: 443)])
    }

    /// RFC 6761: `.invalid` names never resolve, and a resolver answers so without the network.
    @Test(arguments: NetPlace.allCases)
    func aNameThatDoesNotResolveThrowsAnErrorNamingTheHostAndGaiText(place: NetPlace) async throws {
        let result = await Result { try await place.run { try await SocketAddress.resolve(host: "nowhere.invalid", port: 80) } }
        guard case .failure(let error as NameResolutionError) = result else {
            Issue.record("expected NameResolutionError, got \(result)")
            return
        }
        #expect(error.host == "nowhere.invalid")
        #expect(error.code == EAI_NONAME || error.code == EAI_AGAIN, "got \(error.code)")
        #expect(error.reason == String(cString: gai_strerror(error.code)))
        #expect(error.description.contains("could not resolve \"nowhere.invalid\": \(error.reason)"))
        #expect(!error.isTemporary || error.code == EAI_AGAIN)
    }

    @Test func emptyAndNULHostsAreRejectedBeforeAnyLookup() async throws {
        for host in ["", "local\0host"] {
            let result = await Result { try await SocketAddress.resolve(host: host, port: 80) }
            guard case .failure(let error as NameResolutionError) = result else {
                Issue.record("expected NameResolutionError for \(String(reflecting: host)), got \(result)")
                continue
            }
            #expect(error.code == 0)
        }
    }

    @Test func aTaskCancelledBeforeResolvingThrowsCancellationError() async throws {
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await SocketAddress.resolve(host: "localhost", port: 80)
        }
        #expect(isCancellation(await task.result))
    }

    /// The lookup runs on the caller's pool's blocking budget; cancelling the caller while the
    /// lookup waits for (or holds) its unit returns at once. With the pool's one unit held by
    /// another section, the lookup cannot finish, so only the cancellation can end the resolve.
    @Test(arguments: [PoolKind.ioThreads, .workStealing])
    func cancellationMidLookupReturnsAtOnceAndTheLookupIsAbandoned(kind: PoolKind) async throws {
        let ioThreads = kind == .ioThreads ? try IOThreadPool(configuration: .init(threadCount: 2, maxBlocking: 1)) : nil
        let workStealing = kind == .workStealing ? try WorkStealingPool(configuration: .init(threadCount: 2, maxBlocking: 1)) : nil
        func spawn<T: Sendable>(_ body: sending @escaping () async throws -> T) throws -> Task<T, any Error> {
            if let ioThreads { return try ioThreads.spawn(body) }
            return try workStealing!.spawn(body)
        }
        let holding = Counter()
        let release = DispatchSemaphore(value: 0)
        var released = false
        defer { if !released { release.signal() } }  // never leave a thread blocked, even on failure
        let holder = try spawn {
            try await blocking {
                holding.increment()
                release.wait()
            }
        }
        try await waitUntil("the budget's one unit is held", deadline: .seconds(45)) { holding.count > 0 }
        let resolving = try spawn { try await SocketAddress.resolve(host: "localhost", port: 80) }
        try await Task.sleep(for: .milliseconds(20))  // let the lookup queue for the unit (not required)
        resolving.cancel()
        #expect(isCancellation(await resolving.result))
        release.signal()
        released = true
        try await holder.value
        await ioThreads?.shutdownGracefully()
        await workStealing?.shutdownGracefully()
    }

    /// getaddrinfo cannot be interrupted: a cancelled resolve returns while the lookup still
    /// blocks in it (here a stand-in that blocks until released), and the lookup's late answer is
    /// dropped.
    @Test(arguments: NetPlace.allCases)
    func cancellationWhileTheLookupBlocksReturnsWithoutWaitingForIt(place: NetPlace) async throws {
        let inLookup = Counter()
        let release = DispatchSemaphore(value: 0)
        var released = false
        defer { if !released { release.signal() } }  // never leave a thread blocked, even on failure
        let finished = Counter()
        let slowLookup: @Sendable (String, UInt16) throws(NameResolutionError) -> [SocketAddress] = { _, port in
            inLookup.increment()
            release.wait()
            finished.increment()
            return [.loopbackIPv4(port: port)]
        }
        let outcome = try await place.run {
            let resolving = Task { try await SocketAddress.resolve(host: "example.test", port: 1, using: slowLookup) }
            try await waitUntil("the lookup blocks", deadline: .seconds(45)) { inLookup.count > 0 }
            resolving.cancel()
            return await resolving.result
        }
        #expect(isCancellation(outcome))
        #expect(finished.count == 0, "the resolve waited for the lookup")
        release.signal()
        released = true
        try await waitUntil("the abandoned lookup finishes", deadline: .seconds(45)) { finished.count > 0 }
    }

    // MARK: SocketAddress and C sockaddr

    @Test func aSockaddrRoundTripsThroughTheCView() throws {
        for address in [try SocketAddress("10.1.2.3:80"), try SocketAddress("[fe80::1%3]:443"), .loopbackIPv6(port: 0)] {
            let back = try address.withUnsafeSockAddr { try SocketAddress($0, length: $1) }
            #expect(back == address)
        }
    }

    @Test func aSockaddrOfAnotherFamilyOrTooShortIsRejectedWithAReason() throws {
        var unix = sockaddr_un()
        unix.sun_family = sa_family_t(AF_UNIX)
        let unixError = withUnsafePointer(to: &unix) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Result { () throws(SocketAddressError) in try SocketAddress(pointer, length: socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        guard case .failure(let familyError) = unixError else { Issue.record("AF_UNIX accepted"); return }
        #expect(familyError.reason.contains("neither AF_INET"))

        let short = try SocketAddress("[::1]:80").withUnsafeSockAddr { pointer, _ in
            Result { () throws(SocketAddressError) in try SocketAddress(pointer, length: 16) }
        }
        guard case .failure(let lengthError) = short else { Issue.record("a 16-byte sockaddr_in6 accepted"); return }
        #expect(lengthError.reason.contains("shorter than the family's sockaddr (28 bytes)"))
    }
}
