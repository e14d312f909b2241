import CoreMetrics
@_spi(IOPoolSupport) import IOPool

/// Exports an `IOThreadPool`: per thread, `IOThread/Metrics` (dimensions `pool`, `thread`); per
/// pool, `IOThreadPool/PoolMetrics`. The names are in ``PoolMetricNames``.
final class IOThreadPoolExport: PoolExport {
    private struct ThreadHandles {
        var jobs, localEnqueues, remoteEnqueues, wakeups, polls, events, parks, busy: DeltaCounter
        let registeredSockets, pendingTimers: Gauge
        let schedulingDelay: CoreMetrics.Timer
    }
    private struct Handles {
        var threads: [ThreadHandles]
        let liveTasks, blockingRunning, blockingWaiting: Gauge
    }

    private let pool: IOThreadPool
    private let handles: Locked<Handles>
    private let schedulingDelays: [CoreMetrics.Timer]

    init(pool: IOThreadPool, poolName: String, factory: any MetricsFactory) {
        self.pool = pool
        let poolDimension = [("pool", poolName)]
        let threads = pool.threads.map { thread in
            let dimensions = poolDimension + [("thread", thread.name)]
            func counter(_ label: String) -> DeltaCounter { DeltaCounter(label, dimensions, factory) }
            return ThreadHandles(
                jobs: counter(PoolMetricNames.threadJobs),
                localEnqueues: counter(PoolMetricNames.threadLocalEnqueues),
                remoteEnqueues: counter(PoolMetricNames.threadRemoteEnqueues),
                wakeups: counter(PoolMetricNames.threadWakeups),
                polls: counter(PoolMetricNames.threadPolls),
                events: counter(PoolMetricNames.threadEvents),
                parks: counter(PoolMetricNames.threadParks),
                busy: counter(PoolMetricNames.threadBusyNanoseconds),
                registeredSockets: Gauge(label: PoolMetricNames.threadRegisteredSockets, dimensions: dimensions, factory: factory),
                pendingTimers: Gauge(label: PoolMetricNames.threadPendingTimers, dimensions: dimensions, factory: factory),
                schedulingDelay: CoreMetrics.Timer(label: PoolMetricNames.threadSchedulingDelay, dimensions: dimensions, factory: factory))
        }
        schedulingDelays = threads.map(\.schedulingDelay)
        handles = Locked(
            Handles(
                threads: threads,
                liveTasks: Gauge(label: PoolMetricNames.liveTasks, dimensions: poolDimension, factory: factory),
                blockingRunning: Gauge(label: PoolMetricNames.blockingRunning, dimensions: poolDimension, factory: factory),
                blockingWaiting: Gauge(label: PoolMetricNames.blockingWaiting, dimensions: poolDimension, factory: factory)))
    }

    /// The reporting task sleeps on the first thread's loop timers.
    var host: any TaskExecutor { pool.threads[0] }

    var isPoolStopped: Bool { pool.threads[0].isStopped }

    func report() {
        let perThread = pool.metrics
        let poolWide = pool.poolMetrics
        handles.withLock { handles in
            for (index, metrics) in perThread.enumerated() {
                handles.threads[index].jobs.update(metrics.jobsRun)
                handles.threads[index].localEnqueues.update(metrics.localEnqueues)
                handles.threads[index].remoteEnqueues.update(metrics.remoteEnqueues)
                handles.threads[index].wakeups.update(metrics.eventfdWakeups)
                handles.threads[index].polls.update(metrics.epollWaits)
                handles.threads[index].events.update(metrics.events)
                handles.threads[index].parks.update(metrics.parks)
                handles.threads[index].busy.update(metrics.busyNanoseconds)
                handles.threads[index].registeredSockets.record(metrics.registeredSockets)
                handles.threads[index].pendingTimers.record(metrics.pendingTimers)
            }
            handles.liveTasks.record(poolWide.liveTasks)
            handles.blockingRunning.record(poolWide.blockingRunning)
            handles.blockingWaiting.record(poolWide.blockingWaiting)
        }
    }

    func probeSchedulingDelay() {
        for (thread, timer) in zip(pool.threads, schedulingDelays) {
            sampleSchedulingDelay(on: thread, into: timer)
        }
    }
}
