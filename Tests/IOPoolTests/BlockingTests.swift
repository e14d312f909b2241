import Dispatch
import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import Synchronization
import Testing

/// `blocking { }`: ports of tokio-threadpool's `tests/blocking.rs`, and the IOThread and off-pool
/// cases. Blocking calls here are semaphores and `usleep`; no assertion depends on timing.
@Suite(.timeLimit(.minutes(2))) struct BlockingTests {
    /// tokio-threadpool `basic`: one worker, one unit of capacity. Task A blocks until task B runs,
    /// which it can only do because A's worker was handed to another thread.
    @Test func basic() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1, maxBlocking: 1))
        let bRan = DispatchSemaphore(value: 0)
        let a = try pool.spawn { () -> Bool in
            try await blocking { bRan.wait() }
            return WorkStealingPool.current === pool  // resumed on the pool afterwards
        }
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        try pool.spawn {
            startedContinuation.yield()
            bRan.signal()
        }
        for await _ in started { break }
        #expect(try await a.value)
        await pool.shutdownGracefully()
    }

    /// tokio-threadpool `notify_task_on_capacity`: one worker, one unit, ten tasks each blocking
    /// 100 ms; the waiters are served in turn and all finish.
    @Test func notifyTaskOnCapacity() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1, maxBlocking: 1))
        let finished = Counter()
        // (inside the section now, most inside at once)
        let occupancy = Locked<(inside: Int, maximum: Int)>((0, 0))
        for _ in 0..<10 {
            try pool.spawn {
                try await blocking {
                    occupancy.withLock { $0.inside += 1; $0.maximum = max($0.maximum, $0.inside) }
                    usleep(100_000)
                    occupancy.withLock { $0.inside -= 1 }
                }
                finished.increment()
            }
        }
        await pool.shutdownGracefully()
        #expect(finished.count == 10)
        #expect(occupancy.withLock { $0.maximum } == 1)  // never more than maxBlocking at once
        #expect(pool.metrics.blockingRunning == 0)
        #expect(pool.metrics.blockingWaiting == 0)
    }

    /// Capacity is not lost: a task that gets the unit and ends its section without blocking (its
    /// call throws at once) passes it on, and the next waiter proceeds.
    @Test func capacityIsNotLostWhenATaskDoesNotBlock() async throws {
        struct Refused: Error {}
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, maxBlocking: 1))
        let release = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        let holder = try pool.spawn {
            try await blocking {
                holding.signal()
                release.wait()
            }
        }
        holding.wait()
        // Two waiters queue behind the holder: the first throws at once, the second must still run.
        let thrower = try pool.spawn { () -> Bool in
            do {
                try await blocking { () throws(Refused) in throw Refused() }
                return false
            } catch {
                return true  // typed: `error` is `Refused`
            }
        }
        while pool.metrics.blockingWaiting < 1 { try await Task.sleep(for: .milliseconds(1)) }
        let second = try pool.spawn { try await blocking { 42 } }
        while pool.metrics.blockingWaiting < 2 { try await Task.sleep(for: .milliseconds(1)) }
        release.signal()
        try await holder.value
        #expect(await thrower.value)
        #expect(try await second.value == 42)
        #expect(pool.metrics.blockingRunning == 0)
        await pool.shutdownGracefully()
    }

    /// tokio-threadpool `shutdown` (blocking): one worker, ten tasks blocked on one barrier of ten,
    /// so all ten block at once on ten threads; with the worker's thread that is eleven threads, and
    /// after shutdown every one of them has run `beforeStop`.
    @Test func shutdownWithTenBlockedTasks() async throws {
        for _ in 0..<5 {
            let started = Counter()
            let stopped = Counter()
            let pool = try WorkStealingPool(
                configuration: .init(
                    threadCount: 1, maxBlocking: 10, afterStart: { started.increment() }, beforeStop: { stopped.increment() }))
            let barrier = Barrier(10)
            for _ in 0..<10 {
                try pool.spawn { try await blocking { barrier.arriveAndWait() } }
            }
            await pool.shutdownGracefully()
            #expect(started.count == 11)
            #expect(stopped.count == 11)
        }
    }

    /// tokio-threadpool `hammer` (blocking): two workers, four units, many tasks each with one
    /// blocking section; every task and every section runs once.
    @Test(arguments: [
        (1_000, HammerSleep.none), (1_000, .yield), (100, .random), (100, .fixed(3_000)), (100, .fixed(12_000)),
    ])
    func hammer(count: Int, sleep: HammerSleep) async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, maxBlocking: 4))
        let tasksRun = Counter()
        let blocksRun = Counter()
        for index in 0..<count {
            try pool.spawn {
                try await blocking {
                    switch sleep {
                    case .none: break
                    case .yield: sched_yield()
                    case .random: usleep(UInt32(3_000 + (index &* 7919) % 9_000))
                    case .fixed(let microseconds): usleep(UInt32(microseconds))
                    }
                    blocksRun.increment()
                }
                tasksRun.increment()
            }
        }
        await pool.shutdownGracefully()
        #expect(tasksRun.count == count)
        #expect(blocksRun.count == count)
    }

    /// Blocking on an IOThread hands its loop to another thread: a connection on the same loop
    /// keeps being served while the call blocks, and the task resumes on its loop afterwards.
    @Test func blockingOnAnIOThreadKeepsTheLoopServing() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        try thread.spawn {
            for try await connection in listener.connections {
                try thread.spawn {
                    _ = try? await copy(from: connection, to: connection)
                    connection.close()
                }
            }
        }
        let echoed = DispatchSemaphore(value: 0)
        let blocker = try thread.spawn { () -> Bool in
            try await blocking { echoed.wait() }  // waits for the echo below, served by this same loop
            return IOThread.current === thread
        }
        // The client runs off-pool; the server side of its connection is on the (handed-over) loop.
        let client = try await TCPStream.connect(to: address)
        try await client.write(Array("still serving".utf8))
        let reply = try await readExactly(client, 13)
        #expect(String(decoding: reply, as: UTF8.self) == "still serving")
        echoed.signal()
        #expect(try await blocker.value)
        client.close()
        listener.close()
        await pool.shutdown()
    }

    /// Off-pool (Swift's global executor), the call runs on a dedicated thread, not a cooperative one.
    @Test func blockingOffPoolRunsOnADedicatedThread() async throws {
        let name = try await Task.detached { try await blocking { currentThreadName() } }.value
        #expect(name.hasPrefix("iopool-blocking"))
    }

    /// The body's error passes through unchanged.
    @Test func blockingRethrowsTheBodysError() async {
        struct Failure: Error, Equatable { let code: Int }
        await #expect(throws: Failure(code: 7)) {
            try await blocking { () throws(Failure) -> Int in throw Failure(code: 7) }
        }
    }

    /// Blocking sections on workers keep short tasks running: with both workers' tasks blocked,
    /// a short task spawned meanwhile still runs (before any blocking call returns).
    @Test func shortTasksRunWhileEveryWorkerBlocks() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, maxBlocking: 8))
        let release = DispatchSemaphore(value: 0)
        let blocked = Counter()
        var blockers: [Task<Void, any Error>] = []
        for _ in 0..<4 {
            blockers.append(try pool.spawn {
                try await blocking {
                    blocked.increment()
                    release.wait()
                }
            })
        }
        while blocked.count < 4 { try await Task.sleep(for: .milliseconds(1)) }
        let short = try pool.spawn { WorkStealingPool.current === pool }
        #expect(await short.value)
        for _ in 0..<4 { release.signal() }
        for blocker in blockers { try await blocker.value }
        await pool.shutdownGracefully()
    }
}

enum HammerSleep: Sendable, CustomTestStringConvertible {
    case none, yield, random
    case fixed(Int)  // microseconds

    var testDescription: String {
        switch self {
        case .none: "no sleep"
        case .yield: "yield"
        case .random: "3-12 ms random"
        case .fixed(let microseconds): "\(microseconds / 1000) ms"
        }
    }
}

/// A reusable-once barrier for plain threads: `arriveAndWait()` returns when `count` threads arrived.
final class Barrier: @unchecked Sendable {  // state guarded by `mutex`
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var arrived = 0
    private let count: Int

    init(_ count: Int) {
        self.count = count
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    func arriveAndWait() {
        pthread_mutex_lock(&mutex)
        arrived += 1
        if arrived >= count { pthread_cond_broadcast(&condition) }
        while arrived < count { pthread_cond_wait(&condition, &mutex) }
        pthread_mutex_unlock(&mutex)
    }
}

extension BlockingTests {
    /// A backup thread (the thread that ran a blocking call) waits `keepAlive` for a worker to take
    /// over, then exits, running `beforeStop`. Polled until it happens (the time limit is the guard).
    @Test func idleBackupThreadsExitAfterKeepAlive() async throws {
        let stopped = Counter()
        let pool = try WorkStealingPool(
            configuration: .init(threadCount: 1, keepAlive: .milliseconds(50), beforeStop: { stopped.increment() }))
        try await pool.spawn { try await blocking { _ = usleep(1_000) } }.value
        // The worker's thread stays; the (now backup) thread that ran the call leaves.
        while pool.metrics.threadsAlive > 1 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(stopped.count == 1)
        #expect(pool.metrics.backupThreadsAlive == 0)
        await pool.shutdownGracefully()
        #expect(stopped.count == 2)
    }

    /// Metrics show blocking sections running and waiting, and backup threads.
    @Test func metricsShowBlockingSections() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1, maxBlocking: 1))
        let release = DispatchSemaphore(value: 0)
        let first = try pool.spawn { try await blocking { release.wait() } }
        while pool.metrics.blockingRunning < 1 { try await Task.sleep(for: .milliseconds(1)) }
        let second = try pool.spawn { try await blocking { release.wait() } }
        while pool.metrics.blockingWaiting < 1 { try await Task.sleep(for: .milliseconds(1)) }
        let metrics = pool.metrics
        #expect(metrics.blockingRunning == 1)
        #expect(metrics.blockingWaiting == 1)
        #expect(metrics.backupThreadsAlive == 1)  // the thread blocked in the first call
        release.signal()
        release.signal()
        try await first.value
        try await second.value
        #expect(pool.metrics.blockingRunning == 0)
        await pool.shutdownGracefully()
    }
}

extension BlockingTests {
    /// Off-pool, `body` does not outlive the call: hundreds of sequential and concurrent calls, each
    /// with a closure that captures state, return their values (the runtime checks, for the
    /// `withoutActuallyEscaping` that lets a non-escaping `body` cross to the blocking thread, that
    /// nothing holds it once the call returns, and traps the process otherwise).
    ///
    /// Each body sleeps 100 µs so that the calling task has suspended before the blocking thread
    /// resumes it: a resume that overtakes the suspension is correct, but ThreadSanitizer reports it
    /// as a race inside the runtime's continuation (swiftlang/swift#57803). The trap does not depend
    /// on it: it is about what holds `body` after the resume.
    @Test func offPoolCallsReleaseTheirBodyBeforeReturning() async throws {
        for index in 0..<1_000 {
            let captured = [index]
            #expect(try await blocking { usleep(100); return captured[0] } == index)
        }
        let sum = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<300 {
                let captured = [index]
                group.addTask { try await blocking { usleep(100); return captured[0] } }
            }
            return try await group.reduce(0, +)
        }
        #expect(sum == 299 * 300 / 2)
    }
}
