import CoreMetrics
@_spi(IOPoolSupport) import IOPool
import Synchronization

/// Exports an `IOThreadPool`'s or a `WorkStealingPool`'s metrics through swift-metrics,
/// periodically, from a task that sleeps on the pool's own timers.
///
/// ```swift
/// let pool = try IOThreadPool()
/// let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .seconds(10)))
/// try reporter.start()
/// // ... serve ...
/// await pool.shutdownGracefully()  // the reporter reports once more and ends with the pool
/// ```
///
/// What is exported, under which names, types and dimensions: ``PoolMetricNames``. In short, per
/// IOThread (`pool`, `thread`) or per worker (`pool`, `worker`): jobs run, polls, events, parks,
/// steals, busy time; per pool (`pool`): live tasks, `blocking { }` sections running and waiting,
/// registered sockets and pending timers (per thread on an IOThreadPool); and a sampled
/// scheduling-delay timer. Counters are exported as increments (the growth since the previous
/// report), gauges as the value at the report.
///
/// ## Lifetime
///
/// ``start()`` starts one task on the pool (on its first IOThread, or on a worker), which sleeps
/// ``Configuration/interval`` on the pool's timers, reports, and repeats. It is **not** one of the
/// pool's spawned tasks: `IOThreadPool/shutdownGracefully()` does not wait for it, and
/// `IOThreadPool/shutdown()` does not need to cancel it. When the pool stops, the task's sleep
/// fails (the pool's timers fail at shutdown), it reports one last time and ends; so a reporter
/// never holds a pool's shutdown up, and a pool's shutdown always ends its reporter.
/// ``stop()`` ends it earlier. A reporter does not keep its pool alive beyond what the pool's own
/// threads do (it holds a reference; a pool that is never shut down runs until the process exits
/// anyway).
///
/// ## Cost
///
/// Nothing per job: the pools' counters are relaxed single-writer atomics they keep anyway, and
/// the busy time costs two clock reads per park (when a loop or worker has nothing to run), none
/// per job; see BENCHMARKS.md, "Metrics export (issue 13)". A report reads one snapshot (a few
/// loads per thread or worker, one clock read each, and the pool's blocking-capacity and timer
/// locks briefly) and updates the handles; a scheduling-delay sample is one small task per thread
/// (IOThreadPool) or per pool (WorkStealingPool).
///
/// Use one reporter per pool and metrics backend: two would both add the same increments.
public final class PoolMetricsReporter: Sendable {
    /// How a ``PoolMetricsReporter`` reports.
    public struct Configuration: Sendable {
        /// Time between two reports (and two scheduling-delay samples). Must be positive.
        /// Default: 10 seconds.
        public var interval: Duration
        /// The value of the `pool` dimension; `nil` (the default) uses the pool's name
        /// (`IOThreadPool/name`, `WorkStealingPool/name`). Give pools with the same thread name
        /// prefix distinct names here.
        public var poolName: String?
        /// Whether each report also samples the scheduling delay (``PoolMetricNames/threadSchedulingDelay``,
        /// ``PoolMetricNames/schedulingDelay``). Default: true.
        public var samplesSchedulingDelay: Bool
        /// Where the metrics go; `nil` (the default) uses `MetricsSystem.factory` as bootstrapped
        /// when the reporter is created.
        public var factory: (any MetricsFactory)?

        public init(
            interval: Duration = .seconds(10), poolName: String? = nil, samplesSchedulingDelay: Bool = true,
            factory: (any MetricsFactory)? = nil
        ) {
            self.interval = interval
            self.poolName = poolName
            self.samplesSchedulingDelay = samplesSchedulingDelay
            self.factory = factory
        }
    }

    private let export: any PoolExport
    private let configuration: Configuration
    /// The pool's name as exported (the `pool` dimension).
    public let poolName: String
    private let task = Locked<Task<Void, Never>?>(nil)
    private let running = Atomic<Bool>(false)

    /// A reporter for an `IOThreadPool`: creates the metric handles; reports nothing until
    /// ``start()`` or ``report()``.
    /// - Throws: `IOPoolError/invalidConfiguration(_:)` if the interval is not positive.
    public convenience init(pool: IOThreadPool, configuration: Configuration = Configuration()) throws(IOPoolError) {
        let name = configuration.poolName ?? pool.name
        try self.init(
            export: IOThreadPoolExport(pool: pool, poolName: name, factory: configuration.factory ?? MetricsSystem.factory),
            poolName: name, configuration: configuration)
    }

    /// A reporter for a `WorkStealingPool`: creates the metric handles; reports nothing until
    /// ``start()`` or ``report()``.
    /// - Throws: `IOPoolError/invalidConfiguration(_:)` if the interval is not positive.
    public convenience init(pool: WorkStealingPool, configuration: Configuration = Configuration()) throws(IOPoolError) {
        let name = configuration.poolName ?? pool.name
        try self.init(
            export: WorkStealingPoolExport(pool: pool, poolName: name, factory: configuration.factory ?? MetricsSystem.factory),
            poolName: name, configuration: configuration)
    }

    private init(export: any PoolExport, poolName: String, configuration: Configuration) throws(IOPoolError) {
        guard configuration.interval > .zero else {
            throw .invalidConfiguration("PoolMetricsReporter's interval must be positive, got \(configuration.interval)")
        }
        self.export = export
        self.poolName = poolName
        self.configuration = configuration
    }

    /// Starts reporting every ``Configuration/interval`` from a task on the pool (see "Lifetime").
    /// Does nothing if already started (or started and since ended: a reporter starts once).
    /// - Throws: `IOPoolError/shutDown(pool:)` if the pool has already begun to stop.
    public func start() throws(IOPoolError) {
        let refusal: IOPoolError? = task.withLock { task in
            guard task == nil else { return nil }
            guard !export.isPoolStopped else { return .shutDown(pool: poolName) }
            running.store(true, ordering: .relaxed)
            task = Task(executorPreference: export.host) { [self] in
                await Self.reportPeriodically(export, configuration)
                running.store(false, ordering: .releasing)
            }
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Whether the reporting task runs: true from ``start()`` until it ends (the pool stopped, or
    /// ``stop()``).
    public var isRunning: Bool { running.load(ordering: .acquiring) }

    /// Reports the pool's metrics now, from the calling thread (any thread, on the pool or not),
    /// besides the periodic reports. Does not sample the scheduling delay.
    public func report() {
        export.report()
    }

    /// Ends the reporting task (it reports once more) and waits until it has ended. Returns at
    /// once if it was never started or has ended. Idempotent.
    public func stop() async {
        let task = task.withLock { $0 }
        task?.cancel()
        await task?.value
    }

    /// Waits until the reporting task has ended, which it does when the pool stops (or after
    /// ``stop()``). Returns at once if it was never started. Not interruptible: cancelling the
    /// waiting task neither ends the wait nor the reporter (use ``stop()`` for that).
    public func waitUntilFinished() async {
        await task.withLock({ $0 })?.value
    }

    /// The reporting task's body: sleep, report, sample; until cancelled or the pool stops.
    private static func reportPeriodically(_ export: any PoolExport, _ configuration: Configuration) async {
        // Once more at the end, so the counts of the pool's last moments (its drain) are exported
        // too: a stopped pool's snapshots stay readable.
        defer { export.report() }
        while !export.isPoolStopped {
            do {
                try await IOPool.sleep(for: configuration.interval)
            } catch {
                return  // CancellationError from `stop()`, or the pool's timers failed: it stops
            }
            // A sleep can also end normally just as the pool stops; after the loop's close the
            // task would run on the default pool, so look before going on.
            if export.isPoolStopped { return }
            export.report()
            if configuration.samplesSchedulingDelay {
                // From a thread outside the pool, so that each probe is a remote enqueue.
                Task.detached { export.probeSchedulingDelay() }
            }
        }
    }
}
