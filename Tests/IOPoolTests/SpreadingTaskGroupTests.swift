@_spi(IOPoolSupport) @testable import IOPool
import Testing

/// `IOThreadPool.withSpreadingDiscardingTaskGroup` and its throwing form: children go round-robin
/// over the threads (a plain group's stay on the parent's), the group waits for them all, and an
/// error or a cancellation propagates as in a discarding task group.
@Suite(.timeLimit(.minutes(1)))
struct SpreadingTaskGroupTests {
    final class Threads: Sendable {
        private let seen = Locked<[ObjectIdentifier]>([])
        func record() { if let current = IOThread.current { seen.withLock { $0.append(ObjectIdentifier(current)) } } else { seen.withLock { $0.append(ObjectIdentifier(Threads.self)) } } }
        var all: [ObjectIdentifier] { seen.withLock { $0 } }
    }

    /// A plain discarding group in a pool task keeps every child on the parent's thread (what the
    /// README documents); the spreading one puts the children on every thread, in order.
    @Test func childrenLandOnEveryThreadRoundRobin() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 4))
        let (plain, spread, parent, stayed) = try await pool.spawn {
            let parent = ObjectIdentifier(IOThread.current!)
            let plain = Threads()
            await withDiscardingTaskGroup { group in
                for _ in 0..<8 { group.addTask { plain.record() } }
            }
            let spread = Threads()
            let stayed = Counter()
            await pool.withSpreadingDiscardingTaskGroup { group in
                for _ in 0..<8 {
                    group.addTask {
                        let before = IOThread.current
                        spread.record()
                        try? await sleep(for: .milliseconds(1))
                        if let before, IOThread.current === before { stayed.increment() }
                    }
                }
            }
            return (plain.all, spread.all, parent, stayed.count)
        }.value
        #expect(Set(plain) == [parent], "a plain group's children stay on the parent's thread")
        #expect(Set(spread) == Set(pool.threads.map(ObjectIdentifier.init)), "the spreading group's children use every thread")
        #expect(spread.count == 8)
        #expect(stayed == 8, "each child stays on its thread across an await")
        await pool.shutdownGracefully()
    }

    /// Off-pool too (a plain Task): the children run on the pool's threads.
    @Test func offPoolCallerSpreadsOverThePool() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let spread = Threads()
        await Task.detached {
            await pool.withSpreadingDiscardingTaskGroup { group in
                for _ in 0..<4 { group.addTask { spread.record() } }
            }
        }.value
        #expect(Set(spread.all) == Set(pool.threads.map(ObjectIdentifier.init)))
        await pool.shutdownGracefully()
    }

    @Test func theGroupWaitsForEveryChild() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let finished = Counter()
        let seenAtReturn = try await pool.spawn { () async throws -> Int in
            try await pool.withThrowingSpreadingDiscardingTaskGroup { group in
                for index in 0..<6 {
                    group.addTask {
                        try await sleep(for: .milliseconds(5 * index))
                        finished.increment()
                    }
                }
            }
            return finished.count
        }.value
        #expect(seenAtReturn == 6)
        await pool.shutdownGracefully()
    }

    struct Boom: Error, Equatable {}

    /// A child's error cancels the others (their sleeps end by cancellation) and is rethrown.
    @Test func aChildsErrorCancelsTheOthersAndIsRethrown() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let cancelled = Counter()
        let outcome = try await pool.spawn { () async -> String in
            do {
                try await pool.withThrowingSpreadingDiscardingTaskGroup { group in
                    for _ in 0..<3 {
                        group.addTask {
                            do { try await sleep(for: .seconds(3600)) } catch is CancellationError { cancelled.increment() }
                        }
                    }
                    group.addTask {
                        try await sleep(for: .milliseconds(5))
                        throw Boom()
                    }
                }
                return "returned"
            } catch {
                return "\(error)"
            }
        }.value
        #expect(outcome == "\(Boom())")
        #expect(cancelled.count == 3)
        await pool.shutdownGracefully()
    }

    /// Cancelling the calling task cancels every child; the group then returns.
    @Test func cancellingTheCallerCancelsTheChildren() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let started = Counter()
        let cancelled = Counter()
        let caller = try pool.spawn {
            await pool.withSpreadingDiscardingTaskGroup { group in
                for _ in 0..<4 {
                    group.addTask {
                        started.increment()
                        do { try await sleep(for: .seconds(3600)) } catch is CancellationError { cancelled.increment() } catch {}
                    }
                }
            }
        }
        while started.count < 4 { try await Task.sleep(for: .milliseconds(1)) }
        caller.cancel()
        await caller.value
        #expect(cancelled.count == 4)
        await pool.shutdownGracefully()
    }
}
