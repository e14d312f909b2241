@testable import IOPool
import Testing

/// `withTimeout`'s promise: what the caller gets is what the operation did. A result that arrives
/// as the timer fires is returned, never dropped; `TimeoutError` means the operation was cancelled
/// for the deadline and ended by cancellation; the caller's own cancellation is `CancellationError`.
///
/// The socket tests race tiny timeouts against a peer thousands of times, on both pools, and
/// account for every byte and connection. They assert no timing: a run where few timers happen
/// to race still checks everything that did.
@Suite(.timeLimit(.minutes(1)))
struct TimeoutTests {
    // MARK: The outcome, deterministically

    @Test func aValueReturnedAfterTheTimerFiredIsReturned() async throws {
        // The operation is cancelled by the timer but ignores it and returns a value.
        let value = try await withTimeout(.milliseconds(1)) { () async -> Int in
            try? await sleep(for: .seconds(3600))
            return 7
        }
        #expect(value == 7)
    }

    @Test func anErrorThrownAfterTheTimerFiredIsThrown() async throws {
        struct Gave: Error, Equatable {}
        await #expect(throws: Gave()) {
            try await withTimeout(.milliseconds(1)) {
                do { try await sleep(for: .seconds(3600)) } catch { throw Gave() }
            }
        }
    }

    @Test func anOperationThatEndsByCancellationForTheTimerIsATimeout() async throws {
        await #expect(throws: TimeoutError(timeout: .milliseconds(1))) {
            try await withTimeout(.milliseconds(1)) { try await sleep(for: .seconds(3600)) }
        }
        await #expect(throws: TimeoutError(timeout: .zero)) {
            try await withTimeout(.zero) { try await sleep(for: .seconds(3600)) }
        }
    }

    @Test func cancellingTheCallerIsACancellationNotATimeout() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        // The operation's sleep and the timer both arm on the pool's one thread; the caller is
        // cancelled once both are pending, so that the cancellation, not the timer, ends them.
        let caller = try thread.spawn { () async -> String in
            await outcome {
                try await withTimeout(.seconds(3600)) { try await sleep(for: .seconds(3600)) }
            }
        }
        let armed = try await thread.spawn { () async -> Bool in
            for _ in 0..<100_000 {
                if thread.pendingTimerCount == 2 { return true }
                await Task.yield()
            }
            return false
        }.value
        #expect(armed, "both sleeps were armed")
        caller.cancel()
        #expect(await caller.value == "CancellationError")
        await pool.shutdownGracefully()
    }

    @Test func aTimeoutTooLongForTheClockNeverFires() async throws {
        let value = try await withTimeout(.seconds(Int64.max)) { () async throws -> Int in
            try await sleep(for: .milliseconds(20))
            return 42
        }
        #expect(value == 42)
    }

    // MARK: Racing real operations against the timer

    /// Runs `body` as a task on a fresh two-thread pool of `kind` (`TestPool`), then shuts the pool
    /// down. The test's time limit cancels `body` (a bug that loses a wake-up fails instead of hanging).
    private func onPool<Success: Sendable>(
        _ kind: PoolKind, _ body: @escaping @Sendable () async throws -> Success
    ) async throws -> Success {
        let pool = try TestPool(kind)
        let task = try pool.spawn(body)
        let result = await Result { try await value(of: task) {} }
        await pool.shutdown()
        return try result.get()
    }

    /// A loopback TCP connection made from the calling task (so on its pool): the connecting end
    /// and the accepted one. The listener is closed.
    private static func connectedPair() async throws -> (client: TCPStream, server: TCPStream) {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let client = try await TCPStream.connect(to: try listener.localAddress)
        do {
            return (client, try await listener.accept())
        } catch {
            client.close()
            throw error
        }
    }

    /// Byte `index` of the sequence the peers write.
    private static func byte(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: index % 251) }

    struct Tally: Sendable, CustomStringConvertible {
        var inOrder = true
        var count = 0
        var timeouts = 0
        var description: String { "\(count) in order: \(inOrder), \(timeouts) timeouts" }
    }

    @Test(arguments: PoolKind.allCases)
    func readsWithTimeoutsLoseAndReorderNothing(_ kind: PoolKind) async throws {
        let total = 12_000
        let tallies = try await onPool(kind) { () async throws -> [Tally] in
            var tallies: [Tally] = []
            for timeout: Duration in [.microseconds(50), .microseconds(200)] {
                let (client, server) = try await Self.connectedPair()
                defer { client.close(); server.close() }
                // The peer writes the sequence a few bytes at a time, pausing for about as long as
                // the timeout between writes, so that bytes arrive as timers fire.
                let pause = timeout / 2
                let writer = spawn { () async throws in
                    var next = 0
                    var writes = 0
                    while next < total {
                        let count = min(1 + next % 4, total - next)
                        try await client.write((next..<next + count).map(Self.byte))
                        next += count
                        writes += 1
                        if writes % 2 == 0 { try await sleep(for: pause * (writes % 5)) } else { await Task.yield() }
                    }
                    try client.shutdown(.write)
                }
                var tally = Tally()
                while true {
                    do {
                        let bytes = try await withTimeout(timeout) { try await server.read(maxBytes: 5) }
                        if bytes.isEmpty { break }
                        for byte in bytes {
                            if byte != Self.byte(tally.count) { tally.inOrder = false }
                            tally.count += 1
                        }
                    } catch is TimeoutError {
                        tally.timeouts += 1
                    }
                }
                try await writer.value
                tallies.append(tally)
            }
            return tallies
        }
        print("\(kind) reads with timeouts: \(tallies)")
        for tally in tallies {
            #expect(tally.count == total && tally.inOrder, "\(tally)")
        }
    }

    @Test(arguments: PoolKind.allCases)
    func writesWithTimeoutsDuplicateAndLoseNothing(_ kind: PoolKind) async throws {
        let messages = 4_000
        let (received, timeouts) = try await onPool(kind) { () async throws -> ([UInt8], Int) in
            let (client, server) = try await Self.connectedPair()
            defer { client.close(); server.close() }
            // The reader drains continuously, so the socket buffer never fills and every write is
            // one send(2): all of it or nothing. A write that gives TimeoutError wrote nothing and
            // is retried; one that wrote must return, or the retry duplicates it.
            let reader = spawn { try await readToEnd(server) }
            var timeouts = 0
            for index in 0..<messages {
                let message = [Self.byte(index), Self.byte(index + 1)]
                while true {
                    do {
                        try await withTimeout(.microseconds(index % 2 == 0 ? 20 : 50)) {
                            try await client.write(message)
                        }
                        break
                    } catch is TimeoutError {
                        timeouts += 1
                    }
                }
            }
            try client.shutdown(.write)
            return (try await reader.value, timeouts)
        }
        print("\(kind) writes with timeouts: \(timeouts) timeouts")
        let expected = (0..<messages).flatMap { [Self.byte($0), Self.byte($0 + 1)] }
        let firstDifference = (0..<min(received.count, expected.count)).first { received[$0] != expected[$0] }
        #expect(received.count == expected.count && firstDifference == nil,
                "\(received.count) of \(expected.count) bytes, first difference at \(firstDifference.map(String.init) ?? "none")")
    }

    @Test(arguments: PoolKind.allCases)
    func acceptsWithTimeoutsLoseNoConnection(_ kind: PoolKind) async throws {
        let connections = 600
        let (answered, dropped) = try await onPool(kind) { () async throws -> (Int, Int) in
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            let address = try listener.localAddress
            // Server: accepts with tiny timeouts and answers each connection with one byte. A
            // connection accepted as the timer fired and then dropped is closed unanswered.
            let server = spawn { () async -> Void in
                while true {
                    do {
                        let connection = try await withTimeout(.microseconds(30)) { try await listener.accept() }
                        try? await connection.write([1])
                        connection.close()
                    } catch is TimeoutError {
                        continue
                    } catch {
                        return  // the listener was closed: the client is done
                    }
                }
            }
            var answered = 0
            var dropped = 0
            for _ in 0..<connections {
                let client = try await TCPStream.connect(to: address)
                if try await client.read(maxBytes: 1) == [1] { answered += 1 } else { dropped += 1 }
                client.close()
            }
            listener.close()
            await server.value
            return (answered, dropped)
        }
        #expect(dropped == 0)
        #expect(answered == connections)
    }
}
