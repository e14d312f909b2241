import CoreMetrics
import IOPool

/// What ``PoolMetricsReporter`` needs from one kind of pool: read its snapshot and push it into
/// the metric handles, sample its scheduling delay, and tell where its timer task runs and when
/// the pool has stopped. One implementation per pool kind (`IOThreadPoolExport`,
/// `WorkStealingPoolExport`).
protocol PoolExport: Sendable {
    /// Where the reporting task runs (and so whose timers it sleeps on).
    var host: any TaskExecutor { get }
    /// Whether the pool has begun to stop: the reporting task then reports once more and ends.
    var isPoolStopped: Bool { get }
    /// Reads the pool's metrics and exports them. Any thread; serialised inside.
    func report()
    /// Enqueues probe jobs that record the scheduling delay. Called on a thread outside the pool.
    func probeSchedulingDelay()
}

/// A swift-metrics `Counter` fed from a pool counter that only grows: each `update` adds the
/// growth since the previous one. A value below the previous one (a busy-time snapshot read while
/// a park ended, see `IOThread.Metrics.busyNanoseconds`) adds nothing and is not remembered, so
/// the exported total never goes back and never counts the same time twice.
struct DeltaCounter {
    let counter: Counter
    private var last: UInt64 = 0

    init(_ label: String, _ dimensions: [(String, String)], _ factory: any MetricsFactory) {
        counter = Counter(label: label, dimensions: dimensions, factory: factory)
    }

    mutating func update(_ value: UInt64) {
        guard value > last else { return }
        counter.increment(by: Int64(clamping: value - last))
        last = value
    }
}

/// Records the time from now until a job on `executor` starts running, into `timer`. Called on
/// a thread outside the pool, so the probe is a remote enqueue (the way a task resumed by another
/// thread arrives).
func sampleSchedulingDelay(on executor: any TaskExecutor, into timer: CoreMetrics.Timer) {
    let enqueued = IOClock.Instant.now.nanoseconds
    Task(executorPreference: executor) {
        let started = IOClock.Instant.now.nanoseconds
        timer.recordNanoseconds(Int64(clamping: started &- enqueued))
    }
}
