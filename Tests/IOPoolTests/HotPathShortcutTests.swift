@testable import IOPool
import Testing

/// The shortcuts of the per-message path (issue 11) must never cost a wake-up or a cancellation:
/// - after a short read (the kernel buffer drained), the next read waits without a syscall, also
///   on a `WorkStealingPool` (`Registration.observe`): an end of stream that arrived with the last
///   data must still end it;
/// - a spawned task's waits find its cancellation scope through a per-socket cache
///   (`ScopeCache`): a later task waiting on the same socket, often at the address of the task that
///   waited there before, must still be cancellable.
///
/// Each case repeats its round many times: the interleavings that would lose the wake-up depend
/// on when the pool polls, and a round that hangs trips the test's hang guard (the read is then
/// closed from outside and the round records the failure).
@Suite(.timeLimit(.minutes(2)))
struct HotPathShortcutTests {
    @Test(arguments: PoolKind.allCases)
    func endOfStreamArrivingWithTheDrainedDataIsSeen(pool kind: PoolKind) async throws {
        let pool = try TestPool(kind)
        for round in 0..<100 {
            let (client, server) = try await Self.connectedPair()
            // Data and FIN together: one edge (IN|RDHUP) that the short read drains.
            try await client.write(Array("hello".utf8))
            try client.shutdown(.write)
            let reader = try pool.spawn { () async throws -> String in
                let data = try await server.read(maxBytes: 16)
                guard data == Array("hello".utf8) else { return "first read \(data)" }
                return await outcome { try await server.read(maxBytes: 16) }
            }
            let guardDeadline = hangGuard(seconds: 20)
            let watchdog = Task {
                while monotonicNanoseconds() < guardDeadline, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
                if !Task.isCancelled { server.close() }
            }
            let result = try await value(of: reader) { server.close() }
            watchdog.cancel()
            #expect(result == "returned 0 bytes", "round \(round)")
            client.close()
            server.close()
        }
        await pool.shutdown()
    }

    @Test(arguments: PoolKind.allCases)
    func aTaskWaitingOnASocketAnEarlierTaskWaitedOnCanBeCancelled(pool kind: PoolKind) async throws {
        let pool = try TestPool(kind)
        let (client, server) = try await Self.connectedPair()
        for round in 0..<50 {
            // The earlier task waits, gets its byte, and ends: its scope is now the socket's cached one.
            let earlier = try pool.spawn { try await server.read(maxBytes: 1) }
            try await waitUntilPending(server.handle)
            try await client.write([UInt8(truncatingIfNeeded: round)])
            #expect(try await earlier.value == [UInt8(truncatingIfNeeded: round)])

            let later = try pool.spawn { try await server.read(maxBytes: 1) }
            try await waitUntilPending(server.handle)
            later.cancel()
            let result = await Result(catching: { try await value(of: later) { server.close() } })
            #expect(isCancellation(result), "round \(round): \(result)")
        }
        client.close()
        server.close()
        await pool.shutdown()
    }

    private static func connectedPair() async throws -> (client: TCPStream, server: TCPStream) {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let address = try listener.localAddress
        async let accepted = listener.accept()
        let client = try await TCPStream.connect(to: address)
        return (client, try await accepted)
    }
}
