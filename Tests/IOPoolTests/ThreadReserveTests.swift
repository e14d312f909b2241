import Dispatch
import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import SystemPackage
import Testing

/// `ThreadReserve` on its own: the threads behind `blocking { }` and WorkStealingPool's workers.
/// Waits for a state are bounded polls of the reserve's own counters; no assertion depends on timing.
@Suite(.timeLimit(.minutes(1))) struct ThreadReserveTests {
    /// Work handed to a reserve with an idle thread runs on that thread: no new thread starts.
    @Test func reusesAnIdleThread() async throws {
        let started = Counter()
        let reserve = ThreadReserve(.init(namePrefix: "reserve-test-", keepAliveNanoseconds: nil, afterStart: { _ in started.increment() }))
        let threads = Locked<[pthread_t]>([])
        try reserve.run { threads.withLock { $0.append(pthread_self()) } }
        try await waitUntil { reserve.idleCount == 1 }
        try reserve.run { threads.withLock { $0.append(pthread_self()) } }
        try await waitUntil { threads.withLock { $0.count } == 2 && reserve.idleCount == 1 }
        let ran = threads.withLock { $0 }
        #expect(pthread_equal(ran[0], ran[1]) != 0)
        #expect(started.count == 1)
        #expect(reserve.aliveCount == 1)
        reserve.stop()
        await reserve.waitUntilStopped()
        #expect(reserve.aliveCount == 0)
    }

    /// A busy thread is not given more work: a second piece starts a second thread.
    @Test func startsAThreadWhenNoneIsIdle() async throws {
        let reserve = ThreadReserve(.init(namePrefix: "reserve-test-", keepAliveNanoseconds: nil))
        let release = DispatchSemaphore(value: 0)
        let ran = Counter()
        try reserve.run { release.wait(); ran.increment() }
        try reserve.run { ran.increment() }
        try await waitUntil { ran.count == 1 }  // the second ran while the first still blocks
        #expect(reserve.aliveCount == 2)
        release.signal()
        try await waitUntil { ran.count == 2 }
        reserve.stop()
        await reserve.waitUntilStopped()
    }

    /// An idle thread exits once its keep-alive runs out, running `beforeStop`.
    @Test func anIdleThreadExitsAfterItsKeepAlive() async throws {
        let stopped = Counter()
        let reserve = ThreadReserve(
            .init(namePrefix: "reserve-test-", keepAliveNanoseconds: 20_000_000, beforeStop: { _ in stopped.increment() }))
        try reserve.run {}
        try await waitUntil { reserve.aliveCount == 0 }
        #expect(stopped.count == 1)
        #expect(reserve.idleCount == 0)
        // A new piece of work after the expiry starts a fresh thread.
        let ran = Counter()
        try reserve.run { ran.increment() }
        try await waitUntil { ran.count == 1 }
        reserve.stop()
        await reserve.waitUntilStopped()
        #expect(stopped.count == 2)
    }

    /// `stop()` refuses new work; a busy thread exits when its work returns, and
    /// `waitUntilStopped()` waits for it.
    @Test func stopRefusesWorkAndWaitsForBusyThreads() async throws {
        let stopped = Counter()
        let reserve = ThreadReserve(.init(namePrefix: "reserve-test-", keepAliveNanoseconds: nil, beforeStop: { _ in stopped.increment() }))
        let release = DispatchSemaphore(value: 0)
        try reserve.run { release.wait() }
        try reserve.run {}
        try await waitUntil { reserve.idleCount == 1 }
        reserve.stop()
        #expect(throws: IOPoolError.shutDown(pool: "reserve-test-")) { try reserve.run {} }
        try await waitUntil { stopped.count == 1 }  // the idle one left at once
        release.signal()
        await reserve.waitUntilStopped()
        #expect(stopped.count == 2)
        #expect(reserve.aliveCount == 0)
    }

    /// A thread the OS refuses fails `run` with `threadStartFailed`; an idle thread still takes work.
    @Test func aRefusedThreadStartThrows() async throws {
        let reserve = ThreadReserve(.init(namePrefix: "reserve-test-", keepAliveNanoseconds: nil))
        try reserve.run {}
        try await waitUntil { reserve.idleCount == 1 }
        reserve.startProbe.withLock { $0 = { .resourceTemporarilyUnavailable } }
        let ran = Counter()
        let release = DispatchSemaphore(value: 0)
        try reserve.run { release.wait(); ran.increment() }  // the idle thread, busy from now on
        #expect(throws: IOPoolError.threadStartFailed(name: "reserve-test-2", errno: .resourceTemporarilyUnavailable)) {
            try reserve.run {}  // needs a new thread
        }
        release.signal()
        try await waitUntil { ran.count == 1 }
        reserve.stop()
        await reserve.waitUntilStopped()
    }
}
