@_spi(IOPoolSupport) @testable import IOPool
import Testing

// `TaskPool`: both pools through the one protocol (generic and `any`), `run` written once for both,
// and the configuration settings they share, the thread-start hooks' numbers included.

@Suite(.timeLimit(.minutes(1))) struct TaskPoolTests {
    /// `run` through a generic caller: the same code runs on either pool, and returns once the
    /// operation and the task it spawned have finished.
    @Test func runWaitsForSpawnedTasksOnBothPools() async throws {
        #expect(try await spawnedThenCounted(IOThreadPool.self) == (threads: 2, finished: 1))
        #expect(try await spawnedThenCounted(WorkStealingPool.self) == (threads: 2, finished: 1))
    }

    private func spawnedThenCounted<Pool: TaskPool>(_: Pool.Type) async throws -> (threads: Int, finished: Int) {
        let finished = Counter()
        var configuration = Pool.Configuration()
        configuration.threadCount = 2
        let threads = try await Pool.run(configuration: configuration) { pool in
            try pool.spawn {
                try? await Task.sleep(for: .milliseconds(20))
                finished.increment()
            }
            return pool.threadCount
        }
        return (threads, finished.count)
    }

    /// Spawning through `any TaskPool`, and the shutdowns, on both pools.
    @Test func spawnThroughAnExistential() async throws {
        let pools: [any TaskPool] = [
            try IOThreadPool(configuration: .init(threadCount: 1)),
            try WorkStealingPool(configuration: .init(threadCount: 1)),
        ]
        for pool in pools {
            #expect(try await pool.spawn { 6 * 7 }.value == 42)
            #expect(try await pool.spawn { () async throws -> Int in 1 }.value == 1)
            #expect(pool.liveTaskCount == 0)
        }
        await pools[0].shutdownGracefully()
        await pools[1].shutdown()
        for pool in pools {
            #expect(throws: IOPoolError.self) { try pool.spawn {} }
        }
    }

    /// Both configurations default to the same thread count (the CPUs this process may use).
    @Test func oneDefaultThreadCount() {
        #expect(IOThreadPool.Configuration().threadCount == IOThreadPool.Configuration.defaultThreadCount)
        #expect(WorkStealingPool.Configuration().threadCount == IOThreadPool.Configuration.defaultThreadCount)
        #expect(WorkStealingPool.Configuration.defaultThreadCount >= 1)
    }

    /// WorkStealingPool's hooks get the thread's 0-based number, one less than the number in its
    /// name, as IOThreadPool's get the thread's index; `beforeStop` the same number on the same thread.
    @Test func workStealingHooksGetTheThreadNumber() async throws {
        let started = Locked<[Int: String]>([:])
        let stopped = Locked<[Int: String]>([:])
        let pool = try WorkStealingPool(
            configuration: .init(
                threadCount: 2, threadNamePrefix: "wsp-hooks-",
                afterStart: { number in started.withLock { $0[number] = currentThreadName() } },
                beforeStop: { number in stopped.withLock { $0[number] = currentThreadName() } }))
        for _ in 0..<20 { await (try pool.spawn { try? await Task.sleep(for: .milliseconds(1)) }).value }
        await pool.shutdownGracefully()
        let starts = started.withLock { $0 }
        #expect(starts[0] == "wsp-hooks-1")  // the first worker's thread, started by `init`
        for (number, name) in starts { #expect(name == "wsp-hooks-\(number + 1)") }
        #expect(stopped.withLock { $0 } == starts)
    }
}
