@_spi(IOPoolSupport) @testable import IOPool
import Synchronization
import Testing

/// Ports of tokio-io-pool's tests (`src/lib.rs`, `mod tests`) and the pool's own guarantees.
@Suite struct IOThreadPoolTests {
    // tokio-io-pool `it_works`: a spawned task runs and reports back.
    @Test func itWorks() async throws {
        let pool = try IOThreadPool()
        let task = try pool.spawn { 7 * 6 }
        #expect(await task.value == 42)
        await pool.shutdownGracefully()
    }

    // tokio-io-pool `interthread_communication`: A sends 42 to B on the other thread, B adds 1.
    @Test func interthreadCommunication() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let (fromA, toB) = AsyncStream.makeStream(of: Int.self)
        let (fromB, toMain) = AsyncStream.makeStream(of: (Int, Int).self)
        let a = try pool.spawn {
            toB.yield(42)
            toB.finish()
            return IOThread.current!.index
        }
        try pool.spawn {
            for await value in fromA { toMain.yield((value + 1, IOThread.current!.index)) }
            toMain.finish()
        }
        var iterator = fromB.makeAsyncIterator()
        let received = await iterator.next()
        let (value, threadB) = try #require(received)
        #expect(value == 43)
        #expect(await a.value != threadB, "round-robin must put A and B on different threads")
        await pool.shutdownGracefully()
    }

    // tokio-io-pool `really_lazy`: a `run` whose body spawns and returns at once finishes.
    @Test func reallyLazy() async throws {
        let ran = Counter()
        let result = try await IOThreadPool.run { _ in
            spawn { ran.increment() }
            return "done"
        }
        #expect(result == "done")
        #expect(ran.count == 1, "run returns only after the spawned task finished")
    }

    @Test func runWaitsForEverySpawnedTask() async throws {
        let finished = Counter()
        try await IOThreadPool.run(configuration: .init(threadCount: 2)) { pool in
            for _ in 0..<100 {
                try pool.spawn {
                    for _ in 0..<10 { await Task.yield() }
                    finished.increment()
                }
            }
        }
        #expect(finished.count == 100)
    }

    @Test func childrenStayOnTheirThread() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let misplaced = Counter()
        let total = Counter()
        let root = try pool.spawn {
            let home = IOThread.current!
            @Sendable func nest(_ depth: Int) {
                spawn {
                    total.increment()
                    if IOThread.current !== home { misplaced.increment() }
                    await Task.yield()
                    if IOThread.current !== home { misplaced.increment() }
                    if depth > 1 { nest(depth - 1) }
                }
            }
            for _ in 0..<10 { nest(1000) }
            // async let and task groups inherit the thread too.
            async let child = IOThread.current === home
            let inGroup = await withTaskGroup(of: Bool.self) { group in
                group.addTask { IOThread.current === home }
                return await group.next()!
            }
            return await child && inGroup
        }
        #expect(await root.value)
        await pool.shutdownGracefully()
        #expect(total.count == 10_000)
        #expect(misplaced.count == 0)
    }

    @Test(arguments: [1, 3, 4])
    func roundRobinSpreadsEvenly(threads: Int) async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: threads))
        var tasks: [Task<Int, Never>] = []
        for _ in 0..<(threads * 25) {
            tasks.append(try pool.spawn { IOThread.current!.index })
        }
        var counts = [Int](repeating: 0, count: threads)
        for task in tasks { counts[await task.value] += 1 }
        #expect(counts == [Int](repeating: 25, count: threads))
        await pool.shutdownGracefully()
    }

    @Test func hooksRunOncePerThreadWithOneBasedNames() async throws {
        let started = Locked<[Int: String]>([:])
        let stopped = Locked<[Int]>([])
        let pool = try IOThreadPool(
            configuration: .init(
                threadCount: 3, threadNamePrefix: "hooks-",
                afterStart: { index in started.withLock { $0[index] = currentThreadName() } },
                beforeStop: { index in stopped.withLock { $0.append(index) } }))
        #expect(started.withLock { $0 } == [0: "hooks-1", 1: "hooks-2", 2: "hooks-3"])
        #expect(pool.threads.map(\.name) == ["hooks-1", "hooks-2", "hooks-3"])
        #expect(stopped.withLock { $0 }.isEmpty)
        await pool.shutdownGracefully()
        #expect(stopped.withLock { $0 }.sorted() == [0, 1, 2])
    }

    @Test func longThreadNamesAreTruncatedTo15Bytes() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "a-very-long-prefix-"))
        let name = try await pool.spawn { currentThreadName() }.value
        #expect(name == "a-very-long-pre")
        #expect(pool.threads[0].name == name)
        await pool.shutdownGracefully()
    }

    @Test func currentIsNilOffPool() async throws {
        #expect(IOThread.current == nil)
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let onPool = try await pool.spawn { IOThread.current === pool.threads[0] }.value
        #expect(onPool)
        await pool.shutdownGracefully()
    }

    actor PinnedCounter {
        let thread: IOThread
        var count = 0
        init(thread: IOThread) { self.thread = thread }
        nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

        func increment() -> Bool {
            count += 1
            return IOThread.current === thread
        }
    }

    @Test func actorPinnedToAThreadRunsThere() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let counter = PinnedCounter(thread: pool.threads[1])
        // From off-pool, and from a task on the other thread.
        #expect(await counter.increment())
        let fromOtherThread = try pool.threads[0].spawn { await counter.increment() }
        #expect(await fromOtherThread.value)
        // assumeIsolated works on the thread (checkIsolated).
        @Sendable func countAssumingIsolation() -> Int { counter.assumeIsolated { $0.count } }
        let assumed = try await pool.threads[1].spawn { countAssumingIsolation() }.value
        #expect(assumed == 2)
        await pool.shutdownGracefully()
    }

    @Test func spawnAfterShutdownFailsClearly() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        await pool.shutdownGracefully()
        #expect(throws: IOPoolError.self) { try pool.spawn { 1 } }
        do {
            try pool.spawn { 1 }
        } catch {
            #expect("\(error)".contains("has shut down"))
        }
        // Idempotent.
        await pool.shutdownGracefully()
        await pool.shutdown()
    }

    /// The gate opens only once every task waits at it and the shutdown is under way (draining), so
    /// a shutdown that did not wait would return with none of them finished.
    @Test func gracefulShutdownWaitsForTasksInFlight() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let started = Counter()
        let finished = Counter()
        for _ in 0..<10 {
            try pool.spawn {
                started.increment()
                for await _ in gate { break }
                finished.increment()
            }
        }
        while started.count < 10 { try await Task.sleep(for: .milliseconds(1)) }
        let returned = Flag()
        let shutdown = Task { () -> Int in
            await pool.shutdownGracefully()
            returned.set()
            return finished.count
        }
        while pool.accounting.phase != .draining { try await Task.sleep(for: .milliseconds(1)) }
        #expect(!returned.isSet, "shutdownGracefully() returned while every task waited at the gate")
        #expect(finished.count == 0)
        for _ in 0..<10 { open.yield() }
        open.finish()
        #expect(await shutdown.value == 10, "tasks finished when shutdownGracefully() returned")
        #expect(pool.liveTaskCount == 0)
    }

    @Test func immediateShutdownCancelsTasksInFlight() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let cancelled = Counter()
        let running = Counter()
        for _ in 0..<10 {
            try pool.spawn {
                running.increment()
                // Never ends on its own.
                let (stream, _) = AsyncStream.makeStream(of: Int.self)
                for await _ in stream {}
                if Task.isCancelled { cancelled.increment() }
            }
        }
        while running.count < 10 { await Task.yield() }
        await pool.shutdown()
        #expect(cancelled.count == 10)
        #expect(pool.liveTaskCount == 0)
    }

    @Test func freeSpawnOffPoolUsesTheDefaultPool() async throws {
        let onDefault = await spawn { IOPool.IOThreadPool.default.threads.contains { $0 === IOThread.current } }.value
        #expect(onDefault)
    }

    @Test func metricsCountJobs() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let before = pool.threads[0].metrics
        try await pool.spawn { for _ in 0..<100 { await Task.yield() } }.value
        let after = pool.threads[0].metrics
        #expect(after.jobsRun - before.jobsRun >= 100)
        #expect(after.localEnqueues - before.localEnqueues >= 100)
        #expect(after.remoteEnqueues > before.remoteEnqueues)
        await pool.shutdownGracefully()
    }

    @Test func aThreadThatCannotStartIsAClearError() {
        // No system can map a 2^60-byte stack: pthread_create (or setting the size) fails.
        #expect {
            try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "huge-", stackSize: 1 << 60))
        } throws: { error in
            guard case .threadStartFailed(let name, _) = error as? IOPoolError else { return false }
            return name == "huge-1" && "\(error)".contains("could not start pool thread huge-1")
        }
    }

    /// Fairness: a task that never stops yielding keeps the local queue full; the loop must still
    /// poll epoll (every `eventInterval` jobs), or the read below would never complete.
    @Test(.timeLimit(.minutes(1)))
    func socketsAreServedWhileATaskKeepsTheLoopBusy() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let stop = Counter()
        let spins = Counter()
        try pool.spawn {
            while stop.count == 0 {
                spins.increment()
                await Task.yield()
            }
        }
        let reader = try pool.spawn { () async throws -> [UInt8] in
            let connection = try await listener.accept()
            defer { connection.close() }
            let bytes = try await connection.read()
            stop.increment()
            return bytes
        }
        let client = try await TCPStream.connect(to: address)
        try await client.write(Array("ping".utf8))
        let received = try await withTaskCancellationHandler {
            try await reader.value
        } onCancel: {
            stop.increment()
            listener.close()
        }
        #expect(received == Array("ping".utf8))
        #expect(spins.count > 0)
        #expect(pool.threads[0].metrics.epollWaits > 0)
        client.close()
        listener.close()
        await pool.shutdownGracefully()
    }

    @Test func invalidThreadCountIsRejected() {
        #expect(throws: IOPoolError.invalidConfiguration("threadCount must be at least 1, got 0")) {
            try IOThreadPool(configuration: .init(threadCount: 0))
        }
    }
}
