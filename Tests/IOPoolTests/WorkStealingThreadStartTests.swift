import Dispatch
import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import SystemPackage
import Testing

/// WorkStealingPool when the OS refuses a thread: a configuration it refuses throws from `init`
/// (as IOThreadPool's does); a refusal later loses no job and does not hang shutdown.
/// Refusals after `init` are injected with the reserve's `startProbe`.
@Suite(.timeLimit(.minutes(1))) struct WorkStealingThreadStartTests {
    /// A stack size the OS cannot give: both pools' `init` throw `threadStartFailed`.
    @Test func initThrowsWhenTheOSRefusesAThread() {
        #expect(throws: IOPoolError.self) {
            try WorkStealingPool(configuration: .init(threadCount: 2, stackSize: 1 << 60))
        }
        #expect(throws: IOPoolError.self) {
            try IOThreadPool(configuration: .init(threadCount: 2, stackSize: 1 << 60))
        }
        do {
            _ = try WorkStealingPool(configuration: .init(threadCount: 2, stackSize: 1 << 60))
        } catch {
            guard case .threadStartFailed = error else {
                Issue.record("expected threadStartFailed, got \(error)")
                return
            }
        }
    }

    /// With every thread start after `init` refused, tasks still run (on the first worker, whose
    /// thread `init` started), and a graceful shutdown completes.
    @Test func tasksRunWhenLaterThreadStartsAreRefused() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 4))
        pool.reserve.startProbe.withLock { $0 = { .resourceTemporarilyUnavailable } }
        let ran = Counter()
        var tasks: [Task<Void, Never>] = []
        for _ in 0..<100 {
            tasks.append(try pool.spawn { ran.increment() })
        }
        try await waitUntil { ran.count == 100 }
        for task in tasks { await task.value }
        await pool.shutdownGracefully()
    }

    /// A job whose worker's thread could not start (while the only started worker was busy) runs
    /// once that worker is free.
    @Test func aJobWhoseWorkerGetsNoThreadRunsOnAnother() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let refusals = Counter()
        pool.reserve.startProbe.withLock { $0 = { refusals.increment(); return .resourceTemporarilyUnavailable } }
        let release = DispatchSemaphore(value: 0)
        let blocking = Counter()
        let blocker = try pool.spawn { blocking.increment(); release.wait() }  // blocks worker 0's thread
        try await waitUntil { blocking.count == 1 }
        let refusalsBefore = refusals.count  // worker 0 may have woken worker 1 as it found the blocker
        let job = try pool.spawn { WorkStealingPool.current === pool }
        #expect(refusals.count > refusalsBefore)  // the spawn woke worker 1, whose thread was refused
        release.signal()
        await blocker.value
        #expect(await job.value)
        await pool.shutdownGracefully()
    }

    /// A thread start that fails after shutdown began does not leave shutdown waiting: worker 1's
    /// start is admitted, held until shutdown has released worker 0, then refused.
    @Test func shutdownCompletesWhenAThreadStartFailsWhileStopping() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let holdStarts = Counter()
        let heldStarts = Counter()
        pool.reserve.startProbe.withLock {
            $0 = {
                // Only the first start after `holdStarts` is held; a later one (the spawn's retry,
                // after the held start was refused) is refused at once.
                guard holdStarts.count > 0, heldStarts.count == 0 else { return .resourceTemporarilyUnavailable }
                heldStarts.increment()
                // Refuse only once the pool stops and worker 0's thread has let go of its worker.
                // Bounded at 60 s, past the test's time limit: a loaded machine can leave the test's
                // task unscheduled for seconds, and the 5 s this waited before let the start be
                // refused and retried, counting two held starts, before the test had looked.
                let giveUp = monotonicNanoseconds() + 60_000_000_000
                while !(pool.isShuttingDown && pool.activeWorkerCount == 1) && monotonicNanoseconds() < giveUp {
                    usleep(1_000)
                }
                return .resourceTemporarilyUnavailable
            }
        }
        let release = DispatchSemaphore(value: 0)
        let blocking = Counter()
        try pool.spawn { blocking.increment(); release.wait() }  // keeps worker 0 busy
        try await waitUntil { blocking.count == 1 }
        holdStarts.increment()
        // The spawn wakes worker 1 and waits in the probe; on a thread of its own, not the test's
        // (nor one of Dispatch's global queue, whose few threads other tests running in parallel
        // may hold: that made this wait time out in the full suite).
        let spawner = try PThread.start(name: "test-spawner", stackSize: nil) { _ = try? pool.spawn {} }
        try await waitUntil { heldStarts.count == 1 }
        let finished = Counter()
        let shutdown = Task {
            await pool.shutdown()
            finished.increment()
        }
        release.signal()
        try await waitUntil { finished.count == 1 }
        await shutdown.value
        spawner.join()  // its probe returned once the pool stopped
    }
}
