@_spi(IOPoolSupport) @testable import IOPool
import Synchronization
import Testing

/// `BlockingCapacity` on its own: the budget of `blocking { }` sections. No assertion depends on
/// timing; waits for a state are bounded polls of the capacity's own snapshot.
@Suite(.timeLimit(.minutes(1))) struct BlockingCapacityTests {
    /// Waiters are served in the order they arrived.
    @Test func grantsUnitsInArrivalOrder() async throws {
        let capacity = BlockingCapacity(limit: 1)
        try await capacity.acquire()
        let order = Locked<[Int]>([])
        var waiters: [Task<Void, any Error>] = []
        for index in 0..<10 {
            waiters.append(Task {
                try await capacity.acquire()
                order.withLock { $0.append(index) }
                capacity.release()
            })
            try await waitUntil { capacity.snapshot.waiting == index + 1 }
        }
        capacity.release()
        for waiter in waiters { try await waiter.value }
        #expect(order.withLock { $0 } == Array(0..<10))
        #expect(capacity.snapshot == (running: 0, waiting: 0))
    }

    /// A waiter cancelled in line leaves it and throws `CancellationError`, holding no unit.
    @Test func aCancelledWaiterLeavesTheLineAndThrows() async throws {
        let capacity = BlockingCapacity(limit: 1)
        try await capacity.acquire()
        let waiter = Task { try await capacity.acquire() }
        try await waitUntil { capacity.snapshot.waiting == 1 }
        waiter.cancel()
        try await waitUntil { capacity.snapshot.waiting == 0 }
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(capacity.snapshot == (running: 1, waiting: 0))
        capacity.release()
        #expect(capacity.snapshot == (running: 0, waiting: 0))
    }

    /// A task cancelled before it asks takes no unit, even when one is free.
    @Test func aCancelledTaskTakesNoUnit() async throws {
        let capacity = BlockingCapacity(limit: 1)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await capacity.acquire()
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(capacity.snapshot == (running: 0, waiting: 0))
    }

    /// No unit is lost when a grant and a cancellation race: with both units held and waiters A and
    /// B in line, A is cancelled on one thread while a unit is released on another. Either A left
    /// the line (B gets the unit) or A was granted as it was cancelled (A passes it to B): B gets a
    /// unit while the other one is still held, every round.
    @Test func noUnitIsLostWhenAGrantRacesACancellation() async throws {
        let capacity = BlockingCapacity(limit: 2)
        for _ in 0..<500 {
            try await capacity.acquire()
            try await capacity.acquire()
            let a = Task { try await capacity.acquire(); capacity.release() }
            try await waitUntil { capacity.snapshot.waiting == 1 }
            let bGotAUnit = Counter()
            let b = Task {
                try await capacity.acquire()
                bGotAUnit.increment()
                capacity.release()
            }
            try await waitUntil { capacity.snapshot.waiting == 2 }
            // Two threads of their own, started together (not Dispatch's global queue, whose few
            // threads other tests running in parallel may hold).
            _ = await runOnThreads(2) { index in
                if index == 0 { a.cancel() } else { capacity.release() }
            }
            _ = try? await a.value
            try await waitUntil { bGotAUnit.count == 1 }  // with the second unit still held
            try await b.value
            capacity.release()
            #expect(capacity.snapshot == (running: 0, waiting: 0))
        }
        // Both units are still there.
        try await capacity.acquire()
        try await capacity.acquire()
        #expect(capacity.snapshot == (running: 2, waiting: 0))
    }

    /// A higher limit admits waiters at once; a lower one takes effect as units come back.
    @Test func changingTheLimitAdmitsOrRetiresUnits() async throws {
        let capacity = BlockingCapacity(limit: 1)
        try await capacity.acquire()
        let waiters = (0..<2).map { _ in Task { try await capacity.acquire() } }
        try await waitUntil { capacity.snapshot.waiting == 2 }
        capacity.limit = 3
        for waiter in waiters { try await waiter.value }
        #expect(capacity.snapshot == (running: 3, waiting: 0))

        capacity.limit = 1
        let late = Task { try await capacity.acquire() }
        try await waitUntil { capacity.snapshot.waiting == 1 }
        capacity.release()
        capacity.release()
        #expect(capacity.snapshot == (running: 1, waiting: 1))  // two retired, the late one waits
        capacity.release()
        try await late.value
        #expect(capacity.snapshot == (running: 1, waiting: 0))
        capacity.release()
    }
}

/// Polls `condition` every millisecond; fails the test (throws) if it is still false after `seconds`.
func waitUntil(
    seconds: Double = 20, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        if ContinuousClock.now > deadline {
            Issue.record("condition still false after \(seconds) s", sourceLocation: sourceLocation)
            throw TestFailure("timed out")
        }
        try await Task.sleep(for: .milliseconds(1))
    }
}
