import IOPool
import IOPoolMetrics
import Metrics
import MetricsTestKit
import Testing

/// `PoolMetricsReporter` against swift-metrics' `TestMetrics`: names, dimensions and plausible
/// values after work on both pools, counters exported as increments, the reporting task ending
/// with its pool without holding up a graceful shutdown. Each test has its own `TestMetrics`
/// factory (passed in the configuration), so nothing is bootstrapped process-wide.
@Suite(.timeLimit(.minutes(1))) struct PoolMetricsReporterTests {
    // MARK: Work to measure

    /// A loopback connection with an echo task on the server side: `rounds` round trips of 64
    /// bytes. Each side reads before the other has written, so the reactor delivers readiness
    /// events (at least one per round trip). Returns both ends, still open (registered with the
    /// pool's reactors) once the server task has ended.
    private static func echo(rounds: Int) async throws -> (client: TCPStream, server: TCPStream, listener: TCPListener) {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        async let accepted = listener.accept()
        let client = try await TCPStream.connect(to: address)
        let server = try await accepted
        async let echoed: Void = {
            for _ in 0..<rounds { try await server.write(try await readExactly(server, 64)) }
        }()
        let message = [UInt8](repeating: 7, count: 64)
        for _ in 0..<rounds {
            try await client.write(message)
            _ = try await readExactly(client, 64)
        }
        try await echoed
        return (client, server, listener)
    }

    private static func readExactly(_ stream: TCPStream, _ count: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        defer { buffer.deallocate() }
        while bytes.count < count {
            let read = try await stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<(count - bytes.count)]))
            if read == 0 { throw CancellationError() }
            bytes += buffer[..<read]
        }
        return bytes
    }

    /// `count` tasks that yield `yields` times each: at least `count * (yields + 1)` jobs.
    private static func yieldingTasks(_ count: Int, yields: Int) async {
        await withDiscardingTaskGroup { group in
            for _ in 0..<count {
                group.addTask {
                    for _ in 0..<yields { await Task.yield() }
                }
            }
        }
    }

    /// Waits (awaiting, never blocking) until `condition` holds, at most about 10 s.
    private static func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<1_000 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    private static func sum(_ metrics: TestMetrics, _ label: String) -> Int64 {
        metrics.counters(label: label).reduce(0) { $0 + $1.totalValue }
    }

    private static func gaugeSum(_ metrics: TestMetrics, _ label: String) -> Double {
        metrics.recorders(label: label).reduce(0) { $0 + ($1.lastValue ?? 0) }
    }

    // MARK: IOThreadPool

    @Test func ioThreadPoolNamesDimensionsAndValues() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2, threadNamePrefix: "metrics-io-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(poolName: "io", factory: metrics))
        let sleeper = try pool.spawn { try? await sleep(for: .seconds(60)) }
        let (client, server, listener) = try await pool.spawn { try await Self.echo(rounds: 20) }.value
        try await pool.spawn { await Self.yieldingTasks(50, yields: 4) }.value
        // The sleep is armed, and published at its loop's next turn.
        #expect(try await Self.eventually { pool.metrics.map(\.pendingTimers).reduce(0, +) == 1 })
        reporter.report()

        for thread in pool.threads {
            let dimensions = [("pool", "io"), ("thread", thread.name)]
            for label in [
                PoolMetricNames.threadJobs, PoolMetricNames.threadLocalEnqueues, PoolMetricNames.threadRemoteEnqueues,
                PoolMetricNames.threadWakeups, PoolMetricNames.threadPolls, PoolMetricNames.threadEvents,
                PoolMetricNames.threadParks, PoolMetricNames.threadBusyNanoseconds,
            ] {
                _ = try metrics.expectCounter(label, dimensions)
            }
            _ = try metrics.expectGauge(PoolMetricNames.threadRegisteredSockets, dimensions)
            _ = try metrics.expectGauge(PoolMetricNames.threadPendingTimers, dimensions)
            // Every thread ran jobs (round-robin spawns), polled and parked, and was busy a little.
            #expect(try metrics.expectCounter(PoolMetricNames.threadJobs, dimensions).totalValue > 0)
            #expect(try metrics.expectCounter(PoolMetricNames.threadPolls, dimensions).totalValue > 0)
            #expect(try metrics.expectCounter(PoolMetricNames.threadParks, dimensions).totalValue > 0)
            let busy = try metrics.expectCounter(PoolMetricNames.threadBusyNanoseconds, dimensions).totalValue
            #expect(busy > 0 && busy < 60_000_000_000)
        }
        // 50 tasks of 5 jobs, 20 round trips with a wait on each side: lower bounds.
        #expect(Self.sum(metrics, PoolMetricNames.threadJobs) >= 50 * 5 + 20 * 2)
        #expect(Self.sum(metrics, PoolMetricNames.threadEvents) >= 20)
        // Client, server and the listener (it registered when it accepted).
        #expect(Self.gaugeSum(metrics, PoolMetricNames.threadRegisteredSockets) == 3)
        #expect(Self.gaugeSum(metrics, PoolMetricNames.threadPendingTimers) == 1)
        #expect(try metrics.expectGauge(PoolMetricNames.liveTasks, [("pool", "io")]).lastValue == 1)  // the sleeper
        #expect(try metrics.expectGauge(PoolMetricNames.blockingRunning, [("pool", "io")]).lastValue == 0)
        #expect(try metrics.expectGauge(PoolMetricNames.blockingWaiting, [("pool", "io")]).lastValue == 0)

        client.close()
        server.close()
        listener.close()
        sleeper.cancel()
        #expect(try await Self.eventually { pool.metrics.map(\.pendingTimers).reduce(0, +) == 0 && pool.liveTaskCount == 0 })
        reporter.report()
        #expect(Self.gaugeSum(metrics, PoolMetricNames.threadRegisteredSockets) == 0)
        #expect(Self.gaugeSum(metrics, PoolMetricNames.threadPendingTimers) == 0)
        #expect(try metrics.expectGauge(PoolMetricNames.liveTasks, [("pool", "io")]).lastValue == 0)
        await pool.shutdownGracefully()
    }

    /// Each report adds the growth since the previous one: after a large batch and then a small
    /// one, the second increment is small, and the increments add up to the pool's count.
    @Test func countersAreExportedAsIncrements() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "metrics-delta-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(factory: metrics))
        let dimensions = [("pool", pool.name), ("thread", pool.threads[0].name)]

        let thread = pool.threads[0]
        // The loop counts its jobs once per batch (up to 61), after the batch: wait for the count.
        try await pool.spawn { await Self.yieldingTasks(200, yields: 10) }.value
        #expect(try await Self.eventually { thread.metrics.jobsRun >= 200 * 11 })
        reporter.report()
        let afterFirst = try metrics.expectCounter(PoolMetricNames.threadJobs, dimensions).totalValue
        #expect(afterFirst >= 200 * 11)

        let before = thread.metrics.jobsRun
        try await pool.spawn { await Self.yieldingTasks(2, yields: 10) }.value
        #expect(try await Self.eventually { thread.metrics.jobsRun >= before + 2 * 11 })
        reporter.report()
        reporter.report()  // nothing new, or the few jobs that finished the batch: adds little
        let counter = try metrics.expectCounter(PoolMetricNames.threadJobs, dimensions)
        #expect((2...3).contains(counter.values.count))
        #expect(counter.values[1] >= 2 * 11 && counter.values[1] < 200)
        #expect(counter.values.dropFirst().allSatisfy { $0 > 0 && $0 < 200 })
        // No totals re-reported: the sum of the increments is at most the loop's count.
        #expect(counter.totalValue <= Int64(thread.metrics.jobsRun))
        await pool.shutdownGracefully()
    }

    @Test func ioThreadPoolSchedulingDelayIsSampledPerThread() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2, threadNamePrefix: "metrics-delay-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .milliseconds(20), factory: metrics))
        try reporter.start()
        #expect(reporter.isRunning)
        let timers = pool.threads.map { thread in
            { try? metrics.expectTimer(PoolMetricNames.threadSchedulingDelay, [("pool", pool.name), ("thread", thread.name)]) }
        }
        #expect(try await Self.eventually { timers.allSatisfy { ($0()?.values.count ?? 0) >= 2 } })
        for timer in timers {
            // Plausible: not negative, under 10 s.
            #expect(timer()!.values.allSatisfy { $0 >= 0 && $0 < 10_000_000_000 })
        }
        // Periodic reports happened too.
        #expect(try await Self.eventually { metrics.counters(label: PoolMetricNames.threadPolls).allSatisfy { $0.values.count >= 2 } })
        await reporter.stop()
        #expect(!reporter.isRunning)
        await pool.shutdownGracefully()
    }

    // MARK: WorkStealingPool

    @Test func workStealingPoolNamesDimensionsAndValues() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, threadNamePrefix: "metrics-ws-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(poolName: "ws", factory: metrics))
        let sleeper = try pool.spawn { try? await sleep(for: .seconds(60)) }
        let (client, server, listener) = try await pool.spawn { try await Self.echo(rounds: 20) }.value
        try await pool.spawn { await Self.yieldingTasks(200, yields: 4) }.value
        #expect(try await Self.eventually { pool.metrics.pendingTimers == 1 })
        reporter.report()

        for index in 0..<2 {
            let dimensions = [("pool", "ws"), ("worker", String(index))]
            for label in [
                PoolMetricNames.workerJobs, PoolMetricNames.workerStealAttempts, PoolMetricNames.workerSteals,
                PoolMetricNames.workerParks, PoolMetricNames.workerUnparks, PoolMetricNames.workerLIFOHits,
                PoolMetricNames.workerInjectPops, PoolMetricNames.workerBusyNanoseconds,
            ] {
                _ = try metrics.expectCounter(label, dimensions)
            }
            _ = try metrics.expectGauge(PoolMetricNames.workerLocalQueueDepth, dimensions)
        }
        let poolDimension = [("pool", "ws")]
        #expect(Self.sum(metrics, PoolMetricNames.workerJobs) >= 1000 + 20 * 4)
        #expect(Self.sum(metrics, PoolMetricNames.workerParks) > 0)
        let busy = Self.sum(metrics, PoolMetricNames.workerBusyNanoseconds)
        #expect(busy > 0 && busy < 2 * 60_000_000_000)
        #expect(try metrics.expectCounter(PoolMetricNames.driverPolls, poolDimension).totalValue > 0)
        #expect(try metrics.expectCounter(PoolMetricNames.driverEvents, poolDimension).totalValue >= 20)
        #expect(try metrics.expectGauge(PoolMetricNames.registeredSockets, poolDimension).lastValue == 3)
        #expect(try metrics.expectGauge(PoolMetricNames.pendingTimers, poolDimension).lastValue == 1)
        #expect(try metrics.expectGauge(PoolMetricNames.liveTasks, poolDimension).lastValue == 1)
        #expect(try metrics.expectGauge(PoolMetricNames.blockingRunning, poolDimension).lastValue == 0)
        #expect(try metrics.expectGauge(PoolMetricNames.blockingWaiting, poolDimension).lastValue == 0)
        #expect(try metrics.expectGauge(PoolMetricNames.injectQueueDepth, poolDimension).lastValue != nil)
        #expect(try metrics.expectGauge(PoolMetricNames.threadsAlive, poolDimension).lastValue ?? 0 >= 1)
        #expect(try metrics.expectGauge(PoolMetricNames.backupThreadsAlive, poolDimension).lastValue != nil)

        client.close()
        server.close()
        listener.close()
        sleeper.cancel()
        #expect(try await Self.eventually { pool.metrics.pendingTimers == 0 && pool.liveTaskCount == 0 })
        reporter.report()
        #expect(try metrics.expectGauge(PoolMetricNames.registeredSockets, poolDimension).lastValue == 0)
        #expect(try metrics.expectGauge(PoolMetricNames.pendingTimers, poolDimension).lastValue == 0)
        await pool.shutdownGracefully()
    }

    @Test func workStealingPoolSchedulingDelayIsSampled() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, threadNamePrefix: "metrics-wsd-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .milliseconds(20), factory: metrics))
        try reporter.start()
        let timer = { try? metrics.expectTimer(PoolMetricNames.schedulingDelay, [("pool", pool.name)]) }
        #expect(try await Self.eventually { (timer()?.values.count ?? 0) >= 2 })
        #expect(timer()!.values.allSatisfy { $0 >= 0 && $0 < 10_000_000_000 })
        await reporter.stop()
        await pool.shutdownGracefully()
    }

    // MARK: Lifetime

    /// A reporter with an hour's interval does not hold a graceful shutdown up: its task is not
    /// one of the pool's, its sleep fails when the loop stops, it reports once more (the only
    /// report here) and ends.
    @Test func ioThreadPoolShutdownEndsTheReporterWithoutWaitingForIt() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2, threadNamePrefix: "metrics-end-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .seconds(3600), factory: metrics))
        try reporter.start()
        try await pool.spawn { await Self.yieldingTasks(10, yields: 2) }.value
        #expect(pool.liveTaskCount == 0)  // the reporter is not counted
        await pool.shutdownGracefully()
        await reporter.waitUntilFinished()
        #expect(!reporter.isRunning)
        #expect(Self.sum(metrics, PoolMetricNames.threadJobs) >= 30)  // the final report
    }

    @Test func workStealingPoolShutdownEndsTheReporterWithoutWaitingForIt() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, threadNamePrefix: "metrics-wend-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .seconds(3600), factory: metrics))
        try reporter.start()
        try await pool.spawn { await Self.yieldingTasks(10, yields: 2) }.value
        #expect(pool.liveTaskCount == 0)
        await pool.shutdownGracefully()
        await reporter.waitUntilFinished()
        #expect(!reporter.isRunning)
        #expect(Self.sum(metrics, PoolMetricNames.workerJobs) >= 30)
    }

    /// An immediate shutdown too, with a periodic report in flight every 5 ms.
    @Test func immediateShutdownEndsAFrequentReporter() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2, threadNamePrefix: "metrics-imm-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .milliseconds(5), factory: metrics))
        try reporter.start()
        let sleeper = try pool.spawn { try? await sleep(for: .seconds(60)) }
        #expect(try await Self.eventually { metrics.counters(label: PoolMetricNames.threadPolls).allSatisfy { $0.values.count >= 3 } })
        await pool.shutdown()
        await sleeper.value
        await reporter.waitUntilFinished()
        #expect(!reporter.isRunning)
    }

    /// `stop()` ends the reporter while the pool runs on; the pool shuts down as usual afterwards.
    @Test func stopEndsTheReporterWhileThePoolRuns() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1, threadNamePrefix: "metrics-stop-"))
        let metrics = TestMetrics()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .seconds(3600), factory: metrics))
        try reporter.start()
        try reporter.start()  // idempotent
        await reporter.stop()
        #expect(!reporter.isRunning)
        await reporter.stop()
        #expect(!pool.isStopped)
        #expect(try await pool.spawn { 42 }.value == 42)
        await pool.shutdownGracefully()
        #expect(pool.isStopped)
    }

    @Test func invalidIntervalAndStoppedPoolAreRefused() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "metrics-bad-"))
        #expect(throws: IOPoolError.self) {
            try PoolMetricsReporter(pool: pool, configuration: .init(interval: .zero, factory: TestMetrics()))
        }
        await pool.shutdownGracefully()
        let late = try PoolMetricsReporter(pool: pool, configuration: .init(factory: TestMetrics()))
        #expect(throws: IOPoolError.self) { try late.start() }
        late.report()  // a stopped pool's snapshot is still readable
    }
}

/// README "Metrics": the example, verbatim but for the pool's thread count (metrics go to
/// `MetricsSystem.factory`, the no-op one here: nothing is bootstrapped in the tests).
@Suite(.timeLimit(.minutes(1))) struct PoolMetricsReadmeExampleTests {
    @Test func readmeExample() async throws {
        // The doc comment's example, verbatim (the README's is type-checked as a program).
        let pool = try IOThreadPool()
        let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .seconds(10)))
        try reporter.start()
        // ... serve ...
        await pool.shutdownGracefully()  // the reporter reports once more and ends with the pool
        await reporter.waitUntilFinished()
        #expect(!reporter.isRunning)
    }
}
