@_spi(IOPoolSupport) @testable import IOPool
import Glibc
import Synchronization
import Testing

/// Shutdown of an IOThread's loop with work in flight that the pool does not own: tasks created with
/// `Task(executorPreference:)`, actors pinned to the loop. The loop's lifecycle is
/// running → draining → closed (see `IOThread`): it keeps running every job that reaches it until
/// it has failed its waiters and timers and run what that produced, and only a closed loop forwards.
@Suite struct LoopLifecycleTests {
    /// A flag one task sets and another polls.
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// Starts `shutdownGracefully()` in a task of its own and reports whether it returned in time.
    private func shutdownReturns(_ pool: IOThreadPool, within seconds: Double) async -> Bool {
        await returns(within: seconds) { await pool.shutdownGracefully() }
    }

    private func shutdownReturns(_ pool: WorkStealingPool, within seconds: Double) async -> Bool {
        await returns(within: seconds) { await pool.shutdownGracefully() }
    }

    /// Starts `operation` in a task of its own and reports whether it returned in time (a hung
    /// shutdown cannot be cancelled, so the test cannot simply await it).
    private func returns(within seconds: Double, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
        await value(of: Task { await operation() }, within: seconds) != nil
    }

    /// `task`'s value if it ends within `seconds` (on the global executor's clock, not the loops'),
    /// else nil: awaited from a task of its own, so that a task that never ends cannot hang the test.
    private func value<Success: Sendable>(of task: Task<Success, Never>, within seconds: Double) async -> Success? {
        let done = Flag()
        let waiter = Task {
            let value = await task.value
            done.set()
            return value
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while !done.isSet, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return done.isSet ? await waiter.value : nil
    }

    /// Cancellations of non-owned sleeps land while the loop stops: each cancellation enqueues a
    /// loop-confined job (remove the timer). Those must run on the loop, never on another thread at
    /// the same time as the loop's own drain (that corrupted the timer heap: "Index out of range").
    @Test func cancellingNonOwnedSleepsWhileTheLoopStopsIsSafe() async throws {
        for _ in 0..<10 {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let thread = pool.threads[0]
            let armed = Counter()
            let sleepers = (0..<500).map { _ in
                Task(executorPreference: thread) {
                    armed.increment()
                    try? await Task.sleep(for: .seconds(120), clock: .io)
                }
            }
            while armed.count < sleepers.count { await Task.yield() }
            // Cancel exactly in the stop window: once the loop says it stops, while it drains.
            let canceller = Task.detached {
                while !thread.isStopped { sched_yield() }
                for sleeper in sleepers { sleeper.cancel() }
            }
            await pool.shutdownGracefully()
            await canceller.value
            for sleeper in sleepers { await sleeper.value }
        }
    }

    actor Pinned {
        let thread: IOThread
        nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
        private let inside = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
        private(set) var calls = 0

        init(thread: IOThread) { self.thread = thread }

        /// Notes whether another call is inside the actor at the same time (it must never be).
        func touch() {
            if inside.add(1, ordering: .sequentiallyConsistent).newValue != 1 {
                overlaps.add(1, ordering: .relaxed)
            }
            calls += 1
            for _ in 0..<50 { _ = inside.load(ordering: .relaxed) }
            inside.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// An actor pinned to a loop stays serial through the loop's shutdown: its jobs run on the loop
    /// while the loop drains, and on one forwarding thread only once the loop runs nothing else.
    @Test func aPinnedActorStaysSerialWhileItsLoopStops() async throws {
        for _ in 0..<5 {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let actor = Pinned(thread: pool.threads[0])
            let stop = Flag()
            let callers = (0..<3).map { index in
                Task(executorPreference: index == 0 ? pool.threads[0] : nil) {
                    var n = 0
                    while !stop.isSet && n < 200_000 {
                        await actor.touch()
                        n += 1
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(20))
            await pool.shutdownGracefully()
            try await Task.sleep(for: .milliseconds(20))
            stop.set()
            for caller in callers { await caller.value }
            #expect(actor.overlaps.load(ordering: .relaxed) == 0, "two calls ran inside the actor at once")
        }
    }

    /// A task that retries a failed sleep (backoff) during the loop's final drain is told at once
    /// that the loop has stopped, instead of arming a timer that nobody fires.
    @Test func aSleepArmedWhileTheLoopDrainsFailsAtOnce() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let started = Counter()
        let retrier = Task(executorPreference: pool.threads[0]) { () -> [String] in
            var errors: [String] = []
            started.increment()
            while errors.count < 3 {
                do {
                    try await Task.sleep(for: .seconds(120), clock: .io)
                } catch {
                    errors.append("\(error)")
                }
            }
            return errors
        }
        while started.count == 0 { await Task.yield() }
        // Its first 120 s sleep is armed on the loop (the probe is read on the loop itself).
        let thread = pool.threads[0]
        while await (Task(executorPreference: thread) { thread.pendingTimerCount }.value) == 0 {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(await shutdownReturns(pool, within: 30), "the loop never finished its drain")
        let errors = await value(of: retrier, within: 30)
        #expect(errors != nil, "a sleep armed during the drain never resumed")
        if let errors {
            #expect(errors.count == 3)
            #expect(errors.allSatisfy { $0.contains("shut down") }, "\(errors)")
        }
    }

    /// A task the pool does not own that never stops yielding cannot keep the loop from stopping:
    /// after a bounded drain its jobs go on elsewhere, and the task still runs to its end.
    @Test func gracefulShutdownIsNotHeldUpByANonOwnedTaskThatKeepsYielding() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let stop = Flag()
        let yields = Counter()
        let yielder = Task(executorPreference: pool.threads[0]) {
            while !stop.isSet {
                yields.increment()
                await Task.yield()
            }
        }
        while yields.count < 10 { await Task.yield() }
        // A hang detector: the bounded drain (1,000 rounds of the yielder on one thread) takes
        // over 30 s when the whole suite runs in parallel on 2 cores.
        let returned = await shutdownReturns(pool, within: 120)
        #expect(returned, "shutdownGracefully() waited for a task the pool does not own")
        let before = yields.count
        let deadline = ContinuousClock.now + .seconds(10)
        while yields.count == before, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(yields.count > before, "the yielding task stopped running after its loop closed")
        stop.set()
        await yielder.value
    }

    /// The same on a WorkStealingPool: its workers stop, the non-owned tasks' jobs go on elsewhere
    /// (one default-pool thread), a sleep pending on the stopped driver fails, and a later one, armed
    /// where the task now runs, works.
    @Test func workStealingShutdownIsNotHeldUpByNonOwnedTasks() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let stop = Flag()
        let yields = Counter()
        let yielder = Task(executorPreference: pool) {
            while !stop.isSet {
                yields.increment()
                await Task.yield()
            }
        }
        let retrier = Task(executorPreference: pool) { () -> (first: String, retry: String) in
            var first = "slept 120 s"
            do { try await Task.sleep(for: .seconds(120), clock: .io) } catch { first = "\(error)" }
            // The pool has stopped: this sleep is armed where the task's jobs go on (the default pool).
            var retry = "slept"
            do { try await Task.sleep(for: .milliseconds(10), clock: .io) } catch { retry = "\(error)" }
            return (first, retry)
        }
        while yields.count < 10 { await Task.yield() }
        // The retrier's first sleep is armed on the pool's driver (probe), not merely about to be.
        while pool.driver.pendingTimerCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(await shutdownReturns(pool, within: 30), "shutdownGracefully() waited for tasks the pool does not own")
        stop.set()
        await yielder.value
        let outcome = await value(of: retrier, within: 30)
        #expect(outcome != nil, "a sleep pending at the shutdown never resumed")
        if case let (first, retry)? = outcome {
            #expect(first.contains("shut down"), "\(first)")
            #expect(retry == "slept")
        }
    }

    /// Work enqueued on a loop after it closed still runs, in order, on one thread (the default
    /// pool's thread assigned to it), never on the closed loop.
    @Test func jobsReachingAClosedLoopRunInOrderElsewhere() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        await pool.shutdownGracefully()
        #expect(thread.isStopped)
        let order = Locked<[Int]>([])
        let tasks = (0..<100).map { index in
            Task(executorPreference: thread) {
                order.withLock { $0.append(index) }
                return IOThread.current.map { $0 === thread } ?? false
            }
        }
        for task in tasks { #expect(await task.value == false) }
        #expect(order.withLock { $0 } == Array(0..<100), "forwarded jobs ran out of order")
    }

    /// After a reactor closed its descriptors, a late `wake()` (a producer that decided to wake the
    /// loop just before it closed) writes nowhere: not into a descriptor that reused the number.
    @Test func aLateWakeUpNeverWritesIntoAReusedDescriptor() throws {
        let reuses = try countLateWakeUpsIntoReusedNumbers { () throws -> (closed: Set<CInt>, wake: () -> Void) in
            let reactor = try Reactor()
            let closed: Set<CInt> = [reactor.wakeFD, reactor.epollFD]
            reactor.closeDescriptors()
            return (closed, { reactor.wake() })
        }
        #expect(reuses > 0, "no pipe reused a closed number in any round: the test checked nothing")
    }

    /// The same for a WorkStealingPool's shared driver: an unpark racing the driver's stop.
    @Test func aLateDriverWakeUpAfterStopWritesNowhere() throws {
        let reuses = try countLateWakeUpsIntoReusedNumbers { () throws -> (closed: Set<CInt>, wake: () -> Void) in
            let driver = try SharedDriver()
            let closed: Set<CInt> = [driver.reactor.wakeFD]
            driver.stop()
            return (closed, { driver.wake() })
        }
        #expect(reuses > 0, "no pipe reused a closed number in any round: the test checked nothing")
    }
}

/// Rounds of: `closeAndKeepWaker` closes descriptors, two new pipes are opened, and the late wake
/// runs; in rounds where a pipe got one of the closed numbers, nothing may be readable from the
/// pipes. Other tests running in parallel open descriptors too and may take the closed numbers
/// first, so a round without reuse checks nothing: up to 200 rounds run until 10 had reuse.
/// Returns how many had.
private func countLateWakeUpsIntoReusedNumbers(
    _ closeAndKeepWaker: () throws -> (closed: Set<CInt>, wake: () -> Void)
) throws -> Int {
    var reuses = 0
    for _ in 0..<200 where reuses < 10 {
        let (closed, wake) = try closeAndKeepWaker()
        let pipes = [makePipe(), makePipe()]
        defer { for (r, w) in pipes { close(r); close(w) } }
        guard pipes.contains(where: { closed.contains($0.write) || closed.contains($0.read) }) else { continue }
        reuses += 1
        wake()
        for (readEnd, _) in pipes {
            var buffer = [UInt8](repeating: 0, count: 16)
            let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            #expect(count == -1 && errno == EAGAIN, "a late wake-up wrote \(count) bytes into a reused descriptor")
        }
    }
    return reuses
}

/// A pipe with a non-blocking read end.
private func makePipe() -> (read: CInt, write: CInt) {
    var fds: [CInt] = [0, 0]
    #expect(pipe(&fds) == 0)
    _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
    return (fds[0], fds[1])
}

/// An immediate shutdown cancels the pool's tasks; their cancellation handlers are user code and
/// run with none of the runtime's locks held, so a handler that starts more work on the pool (and
/// waits for it to start) does not stall it.
@Suite struct ShutdownCancellationTests {
    @Test func cancellationHandlersRunWithNoRuntimeLockHeld() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let waiting = Counter()
        let allStarted = Locked<Bool?>(nil)
        let started = ConditionLock(0)
        let count = 256
        // The task waits on a plain continuation that only the handler resumes (a cancellable wait
        // would resume the task, whose thread would then wait for the handler to return: the Swift
        // runtime runs handlers under the cancelled task's status lock).
        let parked = Locked<CheckedContinuation<Void, Never>?>(nil)
        try pool.spawn {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    parked.withLock { $0 = continuation }
                    waiting.increment()
                }
            } onCancel: {
                // Many tasks land in every shard of the running-task table: one of them would wait
                // for a shard lock the canceller held while it ran this handler.
                for _ in 0..<count {
                    _ = try? pool.spawn {
                        started.withLock { $0 += 1 }
                        started.broadcast()
                    }
                }
                let deadline = monotonicNanoseconds() + 3_000_000_000
                let ok = started.wait(until: { $0 >= count }, deadline: deadline) { _, timedOut in !timedOut }
                allStarted.withLock { $0 = ok }
                parked.withLock { $0 }?.resume()
            }
        }
        while waiting.count == 0 { await Task.yield() }
        await pool.shutdown()
        #expect(allStarted.withLock { $0 } == true, "tasks spawned by a cancellation handler could not start while it ran")
    }
}
