import Dispatch
import Glibc
@testable import IOPool
import Synchronization
import Testing

/// The budget of `blocking { }` sections in every context (off-pool, IOThreadPool, WorkStealingPool)
/// and cancellation of sections waiting for it.
@Suite(.timeLimit(.minutes(1))) struct BlockingBudgetTests {
    /// 200 concurrent off-pool calls with a budget of 4: never more than 4 bodies run at once, and
    /// every call completes.
    @Test func offPoolCallsStayWithinTheirBudget() async throws {
        let budget = BlockingCapacity(limit: 4)
        let occupancy = Occupancy()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await BlockingHandOff.runOffPool({ occupancy.enter(); usleep(2_000); occupancy.leave() }, budget: budget)
                }
            }
            try await group.waitForAll()
        }
        #expect(occupancy.total == 200)
        #expect(occupancy.maximum <= 4)
        #expect(budget.snapshot == (running: 0, waiting: 0))
    }

    /// The public off-pool path draws on the process-wide budget, `OffPoolBlocking.maxBlocking`.
    @Test func offPoolCallsUseTheProcessWideBudget() async throws {
        #expect(OffPoolBlocking.maxBlocking == OffPoolBlocking.capacity.limit)
        let inside = Counter()
        let release = DispatchSemaphore(value: 0)
        let call = Task.detached { try await blocking { inside.increment(); release.wait() } }
        // Awaited, not a semaphore wait: that would block a thread of Swift's global executor (two
        // on this machine) until the call ran, which itself needs a thread of that executor.
        try await waitUntil { inside.count == 1 }
        #expect(OffPoolBlocking.capacity.snapshot.running >= 1)
        release.signal()
        try await call.value
    }

    /// 200 concurrent calls on an IOThread of a pool with `maxBlocking: 4`: never more than 4 bodies
    /// run at once, every call completes, and each task is back on its loop afterwards.
    @Test func ioThreadCallsStayWithinThePoolsBudget() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1, maxBlocking: 4))
        let thread = pool.threads[0]
        let occupancy = Occupancy()
        var tasks: [Task<Bool, any Error>] = []
        for _ in 0..<200 {
            tasks.append(try thread.spawn { () throws -> Bool in
                try await blocking { occupancy.enter(); usleep(2_000); occupancy.leave() }
                return IOThread.current === thread
            })
        }
        for task in tasks { #expect(try await task.value) }
        #expect(occupancy.total == 200)
        #expect(occupancy.maximum <= 4)
        #expect(thread.blockingCapacity.snapshot == (running: 0, waiting: 0))
        await pool.shutdown()
    }

    @Test func ioThreadPoolRejectsAMaxBlockingBelowOne() {
        #expect(throws: IOPoolError.invalidConfiguration("maxBlocking must be at least 1, got 0")) {
            try IOThreadPool(configuration: .init(threadCount: 1, maxBlocking: 0))
        }
    }

    /// `shutdown()` cancels sections waiting for capacity: with `maxBlocking: 1` and three
    /// sections, while the first one's body still blocks, the other two throw `CancellationError`
    /// and their bodies never run; shutdown then ends with the first section.
    @Test func workStealingShutdownCancelsSectionsWaitingForCapacity() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, maxBlocking: 1))
        let outcome = SectionOutcomes()
        for _ in 0..<3 { try pool.spawn { await outcome.run() } }
        try await waitUntil { pool.metrics.blockingRunning == 1 && pool.metrics.blockingWaiting == 2 }
        try await outcome.expectShutdownCancelsTheWaiters { await pool.shutdown() }
    }

    /// The same on an IOThreadPool with `maxBlocking: 1`.
    @Test func ioThreadShutdownCancelsSectionsWaitingForCapacity() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1, maxBlocking: 1))
        let capacity = pool.threads[0].blockingCapacity
        let outcome = SectionOutcomes()
        for _ in 0..<3 { try pool.spawn { await outcome.run() } }
        try await waitUntil { capacity.snapshot == (running: 1, waiting: 2) }
        try await outcome.expectShutdownCancelsTheWaiters { await pool.shutdown() }
    }

    /// A cancelled task does not start a section, in each context, even with capacity free.
    @Test func aCancelledTaskDoesNotStartASection() async throws {
        let workStealing = try WorkStealingPool(configuration: .init(threadCount: 1))
        let ioThreads = try IOThreadPool(configuration: .init(threadCount: 1))
        let ran = Counter()
        @Sendable func cancelledCall() async -> Bool {
            withUnsafeCurrentTask { $0?.cancel() }
            do {
                try await blocking { ran.increment() }
                return false
            } catch {
                return error is CancellationError
            }
        }
        #expect(await Task.detached { await cancelledCall() }.value)
        #expect(try await workStealing.spawn { await cancelledCall() }.value)
        #expect(try await ioThreads.spawn { await cancelledCall() }.value)
        #expect(ran.count == 0)
        await workStealing.shutdown()
        await ioThreads.shutdown()
    }
}

/// Counts bodies running at once (and the most at once) with atomics.
final class Occupancy: Sendable {
    private let inside = Atomic<Int>(0)
    private let most = Atomic<Int>(0)
    private let entered = Atomic<Int>(0)

    func enter() {
        entered.add(1, ordering: .relaxed)
        let now = inside.add(1, ordering: .sequentiallyConsistent).newValue
        var seen = most.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, current) = most.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = current
        }
    }

    func leave() { inside.subtract(1, ordering: .sequentiallyConsistent) }
    var maximum: Int { most.load(ordering: .relaxed) }
    var total: Int { entered.load(ordering: .relaxed) }
}

/// Blocking sections that wait for `gate` and record whether their body ran or the call was
/// cancelled.
final class SectionOutcomes: Sendable {
    let bodiesRun = Counter()
    let cancelled = Counter()
    let gate = DispatchSemaphore(value: 0)

    func run() async {
        do {
            try await blocking {
                bodiesRun.increment()
                gate.wait()
            }
        } catch {
            if error is CancellationError { cancelled.increment() }
        }
    }

    /// With one section in its body and two waiting: `shutdown` cancels the two waiting while the
    /// first body still blocks, then returns once that body is let go.
    func expectShutdownCancelsTheWaiters(
        sourceLocation: SourceLocation = #_sourceLocation, _ shutdown: @escaping @Sendable () async -> Void
    ) async throws {
        try await waitUntil(sourceLocation: sourceLocation) { bodiesRun.count == 1 }  // holds the unit
        let shutdownTask = Task { await shutdown() }
        defer { for _ in 0..<3 { gate.signal() } }  // lets every body go, even when the test fails
        try await waitUntil(sourceLocation: sourceLocation) { cancelled.count == 2 }
        #expect(bodiesRun.count == 1, sourceLocation: sourceLocation)
        gate.signal()
        await shutdownTask.value
        #expect(bodiesRun.count == 1, sourceLocation: sourceLocation)
    }
}
