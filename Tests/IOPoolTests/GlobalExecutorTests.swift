import Glibc
@testable import IOPool
import Testing

/// `WorkStealingPool.unsafeInstallAsGlobalExecutor`: installing is process-wide and irreversible,
/// so every test installs in a process of its own (an exit test), and reports a failed check as a
/// trap whose message the parent reads from standard error.
///
/// The checks await and never block: in the child, Swift's global executor is the pool under test.
@Suite(.timeLimit(.minutes(2)))
struct GlobalExecutorTests {
    @Test func plainTasksSleepsGroupsAndBlockingRunOnTheInstalledPool() async {
        report(await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { await runChild(childRunsPlainTasksOnThePool) })
    }

    /// The runtime's delayed enqueues (what `Task.sleep` used before Swift 6.2, and the runtime's
    /// fallback where its default executor cannot schedule): called here directly, with a
    /// continuation job as the old `Task.sleep(_:)` made, since Swift 6.3's `Task.sleep` does not
    /// reach them.
    @Test func delayedGlobalJobsWaitOnThePoolsTimersThenRunOnIt() async {
        report(await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { await runChild(childRunsDelayedJobsOnThePoolsTimers) })
    }

    @Test func socketIOFromPlainTasksWaitsOnThePoolsDriver() async {
        report(await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { await runChild(childEchoesFromPlainTasks) })
    }

    @Test func aSecondInstallThrowsAndShutdownLeavesTheWorkersRunning() async {
        report(await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { await runChild(childInstallsTwiceAndShutsDown) })
    }
}

/// The child's side: a thrown error traps with its description, as a failed `check` does.
private func runChild(_ body: () async throws -> Void) async {
    do {
        try await body()
    } catch {
        fatalError("the child threw: \(error)")
    }
}

/// The parent's side: shows a failed child's standard error (its trap message).
private func report(_ result: ExitTest.Result?, sourceLocation: SourceLocation = #_sourceLocation) {
    if let result, result.exitStatus != .exitCode(0) {
        Issue.record("child's standard error: \(String(decoding: result.standardErrorContent, as: UTF8.self))", sourceLocation: sourceLocation)
    }
}

private func check(_ condition: Bool, _ what: @autoclosure () -> String) {
    if !condition { fatalError("check failed: \(what())") }
}

@_silgen_name("swift_task_createNullaryContinuationJob")
private func createNullaryContinuationJob(_ priority: Int, _ continuation: UnsafeRawPointer) -> UnownedJob

@_silgen_name("swift_task_enqueueGlobalWithDelay")
private func enqueueGlobalWithDelay(_ delay: UInt64, _ job: UnownedJob)

@_silgen_name("swift_task_enqueueGlobalWithDeadline")
private func enqueueGlobalWithDeadline(
    _ seconds: Int64, _ nanoseconds: Int64, _ toleranceSeconds: Int64, _ toleranceNanoseconds: Int64, _ clock: Int32,
    _ job: UnownedJob)

private func childRunsPlainTasksOnThePool() async throws {
        let pool = try WorkStealingPool.unsafeInstallAsGlobalExecutor(configuration: .init(threadCount: 2))
        check(WorkStealingPool.globalExecutor === pool && pool.isGlobalExecutor, "globalExecutor names the installed pool")

        check(await Task { WorkStealingPool.current === pool }.value, "Task {} runs on the pool")
        check(await Task.detached { WorkStealingPool.current === pool }.value, "Task.detached runs on the pool")
        check(
            try await Task.detached { () async throws -> Bool in
                try await Task.sleep(for: .milliseconds(20))
                let afterContinuous = WorkStealingPool.current === pool
                try await Task.sleep(for: .milliseconds(5), clock: .suspending)
                return afterContinuous && WorkStealingPool.current === pool
            }.value,
            "a task resumes on the pool after Task.sleep (continuous and suspending clocks)")
        let childrenOnPool = await Task.detached {
            await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { WorkStealingPool.current === pool } }
                return await group.reduce(true) { $0 && $1 }
            }
        }.value
        check(childrenOnPool, "withTaskGroup children run on the pool")
        let asyncLetOnPool = await Task.detached { () async -> Bool in
            async let child = WorkStealingPool.current === pool
            return await child
        }.value
        check(asyncLetOnPool, "async let children run on the pool")

        // blocking { } in a plain task hands the worker off, as in a spawned task: the call
        // runs on a thread that holds no worker, and the task comes back to the pool.
        let (insideOnWorker, afterOnPool) = try await Task.detached { () async throws -> (Bool, Bool) in
            let inside = try await blocking { WorkStealingPool.current != nil }
            return (inside, WorkStealingPool.current === pool)
        }.value
        check(!insideOnWorker, "blocking { } runs its call off the pool's workers")
        check(afterOnPool, "after blocking { } the task is back on the pool")

        // The library's own sleep, from a plain task, waits on the pool's shared driver.
        check(
            try await Task.detached { () async throws -> Bool in
                try await sleep(for: .milliseconds(5))
                return WorkStealingPool.current === pool
            }.value,
            "IOPool's sleep(for:) in a plain task resumes on the pool")
}

private func childRunsDelayedJobsOnThePoolsTimers() async throws {
    let pool = try WorkStealingPool.unsafeInstallAsGlobalExecutor(configuration: .init(threadCount: 2))
    let delay = Duration.milliseconds(500)
    for useDeadline in [false, true] {
        let kind = useDeadline ? "swift_task_enqueueGlobalWithDeadline" : "swift_task_enqueueGlobalWithDelay"
        let start = ContinuousClock.now
        let resumed = Task.detached { () async -> Bool in
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                // A job that resumes `continuation` when run: what the old Task.sleep(_:) enqueued.
                let job = createNullaryContinuationJob(0, unsafeBitCast(continuation, to: UnsafeRawPointer.self))
                if useDeadline {
                    var now = timespec()
                    clock_gettime(CLOCK_BOOTTIME, &now)  // the runtime's clock 1, ContinuousClock
                    let deadline = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) + 500_000_000
                    enqueueGlobalWithDeadline(deadline / 1_000_000_000, deadline % 1_000_000_000, 0, -1, 1, job)
                } else {
                    enqueueGlobalWithDelay(500_000_000, job)
                }
            }
            return WorkStealingPool.current === pool
        }
        // The job waits on the pool's shared driver, not on Dispatch's timers: a timer appears there.
        // (Polled with Task.sleep, whose timers are Dispatch's on Swift 6.3, so they are not counted.)
        var sawTimer = false
        while !sawTimer && start.duration(to: .now) < delay {
            sawTimer = pool.driver.pendingTimerCount == 1
            if !sawTimer { try await Task.sleep(for: .milliseconds(5)) }
        }
        check(sawTimer, "\(kind): the job waited on the pool's timers")
        check(await resumed.value, "\(kind): the task resumed on the pool")
        check(start.duration(to: .now) >= delay, "\(kind): the job ran after its delay")
        check(pool.driver.pendingTimerCount == 0, "\(kind): the pool's timer is gone once it fired")
    }
}

private func childEchoesFromPlainTasks() async throws {
        let pool = try WorkStealingPool.unsafeInstallAsGlobalExecutor(configuration: .init(threadCount: 2))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let server = Task {
            let connection = try await listener.accept()
            defer { connection.close() }
            let bytes = try await connection.read(maxBytes: 5)
            try await connection.write(bytes)
            return WorkStealingPool.current === pool
        }
        let client = Task {
            let connection = try await TCPStream.connect(to: address)
            defer { connection.close() }
            try await connection.write(Array("hello".utf8))
            var echoed: [UInt8] = []
            while echoed.count < 5 { echoed += try await connection.read(maxBytes: 5 - echoed.count) }
            return (echoed, WorkStealingPool.current === pool)
        }
        let (echoed, clientOnPool) = try await client.value
        check(echoed == Array("hello".utf8), "the echo came back: \(echoed)")
        check(try await server.value && clientOnPool, "both plain tasks stayed on the pool across their I/O")
        listener.close()
}

private func childInstallsTwiceAndShutsDown() async throws {
        let pool = try WorkStealingPool.unsafeInstallAsGlobalExecutor(configuration: .init(threadCount: 2))
        do {
            _ = try WorkStealingPool.unsafeInstallAsGlobalExecutor()
            check(false, "a second install succeeded")
        } catch {
            check("\(error)".contains("called before in this process"), "second install: \(error)")
        }
        let spawned = try pool.spawn { WorkStealingPool.current === pool }
        check(await spawned.value, "spawn runs on the pool")
        // Awaited from a plain task, i.e. on one of the pool's own workers: allowed here.
        await Task { await pool.shutdownGracefully() }.value
        check(await Task { WorkStealingPool.current === pool }.value, "plain tasks still run on the pool after its shutdown")
        do {
            _ = try pool.spawn {}
            check(false, "spawn after shutdown succeeded")
        } catch {
            check(error == .shutDown(pool: pool.name), "spawn after shutdown: \(error)")
        }
}
