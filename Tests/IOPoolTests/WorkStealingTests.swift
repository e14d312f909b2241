import Dispatch
import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import Synchronization
import Testing

/// WorkStealingPool: ports of tokio-threadpool's `tests/threadpool.rs` and `tests/hammer.rs`, and
/// the scheduler's guarantees (lazy threads, spawns stay in the pool, no lost jobs).
///
/// No assertion depends on timing; the time limit is a hang guard.
@Suite(.timeLimit(.minutes(2))) struct WorkStealingTests {
    /// tokio-threadpool `natural_shutdown_simple_futures`, looped: tasks run on workers, and after a
    /// graceful shutdown every thread that started has stopped.
    @Test func naturalShutdownSimpleFutures() async throws {
        for _ in 0..<50 {
            let started = Counter()
            let stopped = Counter()
            let pool = try WorkStealingPool(
                configuration: .init(threadCount: 4, afterStart: { started.increment() }, beforeStop: { stopped.increment() }))
            let (stream, continuation) = AsyncStream.makeStream(of: String.self)
            for message in ["one", "two"] {
                try pool.spawn {
                    // On a worker of this pool, not on the test's thread.
                    continuation.yield(WorkStealingPool.current === pool && IOThread.current == nil ? message : "off-pool")
                }
            }
            var received: Set<String> = []
            for await message in stream {
                received.insert(message)
                if received.count == 2 { break }
            }
            #expect(received == ["one", "two"])
            await pool.shutdownGracefully()
            #expect(started.count > 0)
            #expect(started.count == stopped.count)
        }
    }

    /// tokio-threadpool `force_shutdown_drops_futures`: an endless task observes cancellation exactly
    /// once when the pool shuts down immediately, and every thread stops.
    @Test func forceShutdown() async throws {
        for _ in 0..<20 {
            let started = Counter()
            let stopped = Counter()
            let cancelled = Counter()
            let running = Counter()
            let pool = try WorkStealingPool(
                configuration: .init(threadCount: 2, afterStart: { started.increment() }, beforeStop: { stopped.increment() }))
            try pool.spawn {
                running.increment()
                await withTaskCancellationHandler {
                    let (stream, _) = AsyncStream.makeStream(of: Int.self)
                    for await _ in stream {}  // never ends on its own
                } onCancel: {
                    cancelled.increment()
                }
            }
            while running.count == 0 { await Task.yield() }
            await pool.shutdown()
            #expect(cancelled.count == 1)
            #expect(started.count >= 1)
            #expect(started.count == stopped.count)
            #expect(pool.liveTaskCount == 0)
        }
    }

    /// tokio-threadpool `many_oneshot_futures`: 10,000 tasks each count once.
    @Test func manyOneshotFutures() async throws {
        for _ in 0..<5 {
            let pool = try WorkStealingPool(configuration: .init(threadCount: 4))
            let count = Counter()
            for _ in 0..<10_000 {
                try pool.spawn { count.increment() }
            }
            await pool.shutdownGracefully()
            #expect(count.count == 10_000)
        }
    }

    /// Many short-lived pools, each spawning a burst and shutting down: the wake-up and park
    /// protocols under churn (this found a lost wake-up in `Parker`: a notification landing between
    /// its two compare-exchanges left the worker asleep forever).
    @Test func manyShortLivedPools() async throws {
        for _ in 0..<200 {
            let pool = try WorkStealingPool(configuration: .init(threadCount: 4))
            let count = Counter()
            for _ in 0..<500 { try pool.spawn { count.increment() } }
            await pool.shutdownGracefully()
            #expect(count.count == 500)
        }
    }

    /// tokio-threadpool `many_multishot_futures`: 50 chains of 200 forwarding tasks; each message
    /// cycles through its chain 5 times.
    @Test func manyMultishotFutures() async throws {
        let tracks = 50
        let chain = 200
        let cycles = 5
        let pool = try WorkStealingPool(configuration: .init(threadCount: 4))
        var finals: [AsyncStream<String>] = []
        var starts: [AsyncStream<String>.Continuation] = []
        for _ in 0..<tracks {
            let (head, start) = AsyncStream.makeStream(of: String.self)
            var input = head
            for _ in 0..<chain {
                let (next, forward) = AsyncStream.makeStream(of: String.self)
                let source = input
                try pool.spawn {
                    for await message in source { forward.yield(message) }
                    forward.finish()
                }
                input = next
            }
            // The last task sends each message back to the start until it has gone round `cycles` times.
            let (output, emit) = AsyncStream.makeStream(of: String.self)
            let last = input
            try pool.spawn {
                var rounds = 0
                for await message in last {
                    rounds += 1
                    if rounds < cycles {
                        start.yield(message)
                    } else {
                        emit.yield(message)
                        start.finish()  // ends the chain: every forwarder finishes in turn
                    }
                }
                emit.finish()
            }
            starts.append(start)
            finals.append(output)
        }
        for start in starts { start.yield("ping") }
        for output in finals {
            var messages: [String] = []
            for await message in output { messages.append(message) }
            #expect(messages == ["ping"])
        }
        await pool.shutdownGracefully()
        #expect(pool.liveTaskCount == 0)
    }

    /// tokio-threadpool `global_executor_is_configured`: `spawn` inside the pool spawns onto it.
    @Test func spawnInsideThePoolStaysInThePool() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let outer = try pool.spawn { () -> [Bool] in
            var children: [Task<Bool, Never>] = []
            for _ in 0..<100 {
                children.append(spawn { WorkStealingPool.current === pool })
            }
            var results: [Bool] = []
            for child in children { results.append(await child.value) }
            return results
        }
        #expect(await outer.value == Array(repeating: true, count: 100))
        await pool.shutdownGracefully()
    }

    /// tokio-threadpool `new_threadpool_is_idle`, and threads start lazily: a new pool has only the
    /// first worker's thread (started by `init`, so that a refused configuration throws there).
    @Test func newPoolIsIdleAndStartsOneThread() async throws {
        let started = Counter()
        let pool = try WorkStealingPool(configuration: .init(threadCount: 4, afterStart: { started.increment() }))
        #expect(pool.metrics.threadsAlive == 1)
        #expect(pool.liveTaskCount == 0)
        await pool.shutdownGracefully()
        #expect(started.count == 1)
    }

    /// Threads start when work arrives: one task on a 4-worker pool starts its worker's thread and
    /// at most one more (the worker that finds work while searching wakes one more, tokio's ramp-up
    /// rule; that one finds nothing and parks without waking another).
    @Test func oneTaskDoesNotStartEveryThread() async throws {
        let started = Counter()
        let pool = try WorkStealingPool(configuration: .init(threadCount: 4, afterStart: { started.increment() }))
        _ = try await pool.spawn { 1 }.value
        #expect(started.count >= 1 && started.count <= 2)
        await pool.shutdownGracefully()
    }

    /// tokio-threadpool `busy_threadpool_is_not_idle`: a graceful shutdown waits for a pending task.
    @Test func busyPoolIsNotIdleUntilItsTaskEnds() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 4, maxBlocking: 2))
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        try pool.spawn {
            for await _ in gate { break }
        }
        let done = Counter()
        let shutdown = Task {
            await pool.shutdownGracefully()
            done.increment()
        }
        for _ in 0..<1_000 { await Task.yield() }
        #expect(done.count == 0)
        #expect(pool.liveTaskCount == 1)
        open.yield()
        await shutdown.value
        #expect(done.count == 1)
    }

    /// tokio-threadpool `multi_threadpool`: a task on one pool wakes a task on another.
    @Test func crossPoolWakeUps() async throws {
        let first = try WorkStealingPool(configuration: .init(threadCount: 2))
        let second = try WorkStealingPool(configuration: .init(threadCount: 2))
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let waiter = try second.spawn { () -> (Int?, Bool) in
            var iterator = stream.makeAsyncIterator()
            let value = await iterator.next()
            return (value, WorkStealingPool.current === second)
        }
        try first.spawn { continuation.yield(42) }
        let (value, onSecond) = await waiter.value
        #expect(value == 42)
        #expect(onSecond)
        await first.shutdownGracefully()
        await second.shutdownGracefully()
    }

    /// tokio-threadpool `hammer.rs`: 1,000 requester/responder pairs through an acceptor task;
    /// every task is accounted for exactly once (2N + 1).
    @Test func hammer() async throws {
        let pairs = 1_000
        for _ in 0..<3 {
            let pool = try WorkStealingPool(configuration: .init(threadCount: 4))
            let finished = Counter()
            let (requests, submit) = AsyncStream.makeStream(of: CheckedContinuation<Int, Never>.self)
            try pool.spawn {
                defer { finished.increment() }
                for await request in requests {
                    _ = try? pool.spawn {
                        defer { finished.increment() }
                        request.resume(returning: 7)
                    }
                }
            }
            let answered = Counter()
            for _ in 0..<pairs {
                try pool.spawn {
                    defer { finished.increment() }
                    let answer = await withCheckedContinuation { submit.yield($0) }
                    if answer == 7 { answered.increment() }
                }
            }
            while answered.count < pairs { try await Task.sleep(for: .milliseconds(1)) }
            submit.finish()
            await pool.shutdownGracefully()
            #expect(answered.count == pairs)
            #expect(finished.count == 2 * pairs + 1)
        }
    }

    /// Work spreads: the tasks a busy worker spawned run on the idle one, which can only have got
    /// them by stealing from the busy worker's ring (spawns on a worker go to its own LIFO slot and
    /// ring, and 200 of them do not overflow into the inject queue). The spawning task keeps its
    /// worker busy, synchronously, until another worker has run one of its children, so the steal
    /// is certain, not likely; it gives up after 10 s, which fails the test.
    @Test func idleWorkersStealFromABusyOne() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let ran = Counter()
        let ranElsewhere = Counter()
        let spawnerWorker = try await pool.spawn { () -> Int? in
            let home = WorkerThread.current?.worker?.index
            for _ in 0..<200 {
                spawn {
                    if WorkerThread.current?.worker?.index != home { ranElsewhere.increment() }
                    ran.increment()
                }
            }
            let guardDeadline = hangGuard(seconds: 10)
            while ranElsewhere.count == 0, monotonicNanoseconds() < guardDeadline { usleep(100) }
            return home
        }.value
        await pool.shutdownGracefully()
        #expect(spawnerWorker != nil)
        #expect(ran.count == 200)
        #expect(ranElsewhere.count > 0, "no job spawned on one worker ran on the other")
        let metrics = pool.metrics
        #expect(metrics.workers.map(\.jobsRun).reduce(0, +) >= 201)
        #expect(metrics.workers.map(\.steals).reduce(0, +) > 0, "\(metrics)")
    }

    /// A task that yields in a loop does not starve the others on a one-worker pool: a yielded task
    /// waits until the worker has nothing else to run, so 100 tasks spawned from outside all run
    /// within a few of its turns. (Were a yield pushed straight back into the ring, the ring would
    /// never run dry, and the inject queue would be served only every `globalQueueInterval` ticks,
    /// one job at a time: some 6,000 turns.) The spinner gives up after `maxTurns`, so starvation
    /// fails the test instead of hanging it.
    @Test func aYieldingTaskDoesNotStarveOthers() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1))
        let others = Counter()
        let allSpawned = Flag()
        let spinning = Flag()
        let maxTurns = Int(WorkStealingPool.globalQueueInterval)
        let spinner = try pool.spawn { () async -> Int in
            spinning.set()
            var turnsSinceAllSpawned = 0
            while others.count < 100, turnsSinceAllSpawned < maxTurns {
                // Counted only once all 100 are queued: from then on each yield has them ahead of it.
                if allSpawned.isSet { turnsSinceAllSpawned += 1 }
                await Task.yield()
            }
            return turnsSinceAllSpawned
        }
        while !spinning.isSet { try await Task.sleep(for: .milliseconds(1)) }
        for _ in 0..<100 { try pool.spawn { others.increment() } }
        allSpawned.set()
        let turns = await spinner.value
        #expect(others.count == 100, "the spinner took \(turns) turns after the last spawn and \(others.count) of 100 others ran")
        #expect(turns < maxTurns)
        await pool.shutdownGracefully()
        #expect(others.count == 100)
    }

    @Test func spawnAfterShutdownFailsClearly() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1))
        await pool.shutdownGracefully()
        #expect(throws: IOPoolError.self) { try pool.spawn {} }
    }

    @Test func runReturnsAfterEverySpawnedTask() async throws {
        let finished = Counter()
        let value = try await WorkStealingPool.run(configuration: .init(threadCount: 2)) { pool in
            for _ in 0..<100 {
                try pool.spawn {
                    try? await Task.sleep(for: .milliseconds(5))
                    finished.increment()
                }
            }
            return 42
        }
        #expect(value == 42)
        #expect(finished.count == 100)
    }

    @Test func invalidConfigurationIsRejected() {
        #expect(throws: IOPoolError.self) { try WorkStealingPool(configuration: .init(threadCount: 0)) }
        #expect(throws: IOPoolError.self) { try WorkStealingPool(configuration: .init(maxBlocking: 0)) }
    }

    /// A task that prefers the pool but was not spawned on it still runs after the pool stopped
    /// (on the default IOThreadPool): no job is lost.
    @Test func aJobArrivingAfterShutdownStillRuns() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1))
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let outsider = Task(executorPreference: pool) { () -> Bool in
            for await _ in gate { break }
            return true
        }
        await pool.shutdownGracefully()
        open.yield()
        #expect(await outsider.value)
    }

    // MARK: Time on the pool

    /// Sleeps on the shared driver's timers never end early. (Their order after waking is the
    /// scheduler's: timers due in one poll resume through the LIFO slot, as in tokio.)
    @Test func sleepsOnThePoolNeverEndEarly() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let early = Counter()
        let woken = Counter()
        for index in (0..<200).reversed() {
            try pool.spawn {
                let deadline = IOClock.io.now.advanced(by: .microseconds(250 * index + 100))
                try await sleep(until: deadline)
                if IOClock.io.now < deadline { early.increment() }
                woken.increment()
            }
        }
        await pool.shutdownGracefully()
        #expect(woken.count == 200)
        #expect(early.count == 0)
    }

    @Test func cancelledSleepsLeaveTheDriverAtOnce() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let cancelled = Counter()
        let sleepers = try (0..<5_000).map { _ in
            try pool.spawn {
                do { try await sleep(for: .seconds(3600)) } catch is CancellationError { cancelled.increment() } catch {}
            }
        }
        while pool.driver.pendingTimerCount < 5_000 { try await Task.sleep(for: .milliseconds(1)) }
        for sleeper in sleepers { sleeper.cancel() }
        for sleeper in sleepers { await sleeper.value }
        #expect(cancelled.count == 5_000)
        #expect(pool.driver.pendingTimerCount == 0)
        await pool.shutdownGracefully()
    }

    @Test func timeoutOnThePool() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let result = try pool.spawn { () -> String in
            do {
                try await withTimeout(.milliseconds(20)) {
                    try await sleep(for: .seconds(3600))
                }
                return "no timeout"
            } catch is TimeoutError {
                return "timed out"
            } catch {
                return "\(error)"
            }
        }
        #expect(await result.value == "timed out")
        await pool.shutdownGracefully()
    }
}

extension WorkStealingTests {
    /// `Task.yield()` on a worker defers the task (tokio's `defer`), so tasks that yield in a loop
    /// do not starve jobs waiting in the inject queue. Counted in yields, not time: without deferral
    /// each of the 2,000 jobs waits for the next 61st tick, i.e. over 100,000 yields in all (measured:
    /// 240,000 with the deferral removed); with it, the worker takes the jobs in batches and the
    /// yielders run once per batch or driver poll.
    ///
    /// The jobs are all queued before the yielders start yielding (the first yielder holds the one
    /// worker, spinning, until then): otherwise a spawner slowed down by a loaded machine would
    /// trickle jobs in, and the count would measure the spawner instead of the scheduler.
    @Test func yieldingTasksDoNotStarveTheInjectQueue() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1))
        let stop = Counter()
        let queued = Counter()
        let holding = Counter()
        let yields = Counter()
        let yielders = try (0..<2).map { _ in
            try pool.spawn {
                if holding.count == 0 {
                    holding.increment()
                    while queued.count == 0 {}  // holds the worker while the jobs are spawned
                }
                while stop.count == 0 {
                    await Task.yield()
                    yields.increment()
                    // Busy for 20 µs, like tokio's `spawn_many_remote_busy1`.
                    let end = IOClock.io.now.advanced(by: .microseconds(20))
                    while IOClock.io.now < end {}
                }
            }
        }
        while holding.count == 0 { try await Task.sleep(for: .milliseconds(1)) }
        // The yields are counted up to the moment the last job runs, on the worker: counted when
        // this test gets to see the jobs' results, they would include the time it waits for a
        // cooperative thread, long when the suites run in parallel on a loaded machine.
        let ran = Counter()
        let yieldsAtLastJob = Locked(0)
        let count = 2_000
        let spawned = try (0..<count).map { _ in
            try pool.spawn {
                ran.increment()
                if ran.count == count { yieldsAtLastJob.withLock { $0 = yields.count } }
            }
        }
        let before = yields.count
        queued.increment()
        for task in spawned { await task.value }
        let during = yieldsAtLastJob.withLock { $0 } - before
        stop.increment()
        for task in yielders { await task.value }
        #expect(during < 20_000)
        await pool.shutdownGracefully()
    }
}
