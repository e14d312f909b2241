import CoreMetrics
@_spi(IOPoolSupport) import IOPool

/// Exports a `WorkStealingPool`: per worker, `WorkStealingPool/WorkerMetrics` (dimensions
/// `pool`, `worker`); per pool, the rest of `WorkStealingPool/Metrics`. The names are in
/// ``PoolMetricNames``.
final class WorkStealingPoolExport: PoolExport {
    private struct WorkerHandles {
        var jobs, stealAttempts, steals, parks, unparks, lifoHits, injectPops, busy: DeltaCounter
        let localQueueDepth: Gauge
    }
    private struct Handles {
        var workers: [WorkerHandles]
        var driverPolls, driverEvents: DeltaCounter
        let liveTasks, blockingRunning, blockingWaiting, registeredSockets, pendingTimers: Gauge
        let injectQueueDepth, threadsAlive, backupThreadsAlive: Gauge
    }

    private let pool: WorkStealingPool
    private let handles: Locked<Handles>
    private let schedulingDelay: CoreMetrics.Timer

    init(pool: WorkStealingPool, poolName: String, factory: any MetricsFactory) {
        self.pool = pool
        let poolDimension = [("pool", poolName)]
        func gauge(_ label: String) -> Gauge { Gauge(label: label, dimensions: poolDimension, factory: factory) }
        let workers = (0..<pool.threadCount).map { index in
            let dimensions = poolDimension + [("worker", String(index))]
            func counter(_ label: String) -> DeltaCounter { DeltaCounter(label, dimensions, factory) }
            return WorkerHandles(
                jobs: counter(PoolMetricNames.workerJobs),
                stealAttempts: counter(PoolMetricNames.workerStealAttempts),
                steals: counter(PoolMetricNames.workerSteals),
                parks: counter(PoolMetricNames.workerParks),
                unparks: counter(PoolMetricNames.workerUnparks),
                lifoHits: counter(PoolMetricNames.workerLIFOHits),
                injectPops: counter(PoolMetricNames.workerInjectPops),
                busy: counter(PoolMetricNames.workerBusyNanoseconds),
                localQueueDepth: Gauge(label: PoolMetricNames.workerLocalQueueDepth, dimensions: dimensions, factory: factory))
        }
        schedulingDelay = CoreMetrics.Timer(label: PoolMetricNames.schedulingDelay, dimensions: poolDimension, factory: factory)
        handles = Locked(
            Handles(
                workers: workers,
                driverPolls: DeltaCounter(PoolMetricNames.driverPolls, poolDimension, factory),
                driverEvents: DeltaCounter(PoolMetricNames.driverEvents, poolDimension, factory),
                liveTasks: gauge(PoolMetricNames.liveTasks),
                blockingRunning: gauge(PoolMetricNames.blockingRunning),
                blockingWaiting: gauge(PoolMetricNames.blockingWaiting),
                registeredSockets: gauge(PoolMetricNames.registeredSockets),
                pendingTimers: gauge(PoolMetricNames.pendingTimers),
                injectQueueDepth: gauge(PoolMetricNames.injectQueueDepth),
                threadsAlive: gauge(PoolMetricNames.threadsAlive),
                backupThreadsAlive: gauge(PoolMetricNames.backupThreadsAlive)))
    }

    /// The reporting task sleeps on the pool's shared driver timers.
    var host: any TaskExecutor { pool }

    var isPoolStopped: Bool { pool.isStopped }

    func report() {
        let metrics = pool.metrics
        handles.withLock { handles in
            for worker in metrics.workers {
                handles.workers[worker.index].jobs.update(worker.jobsRun)
                handles.workers[worker.index].stealAttempts.update(worker.stealAttempts)
                handles.workers[worker.index].steals.update(worker.steals)
                handles.workers[worker.index].parks.update(worker.parks)
                handles.workers[worker.index].unparks.update(worker.unparks)
                handles.workers[worker.index].lifoHits.update(worker.lifoHits)
                handles.workers[worker.index].injectPops.update(worker.injectPops)
                handles.workers[worker.index].busy.update(worker.busyNanoseconds)
                handles.workers[worker.index].localQueueDepth.record(worker.localQueueDepth)
            }
            handles.driverPolls.update(metrics.driverPolls)
            handles.driverEvents.update(metrics.driverEvents)
            handles.liveTasks.record(metrics.liveTasks)
            handles.blockingRunning.record(metrics.blockingRunning)
            handles.blockingWaiting.record(metrics.blockingWaiting)
            handles.registeredSockets.record(metrics.registeredSockets)
            handles.pendingTimers.record(metrics.pendingTimers)
            handles.injectQueueDepth.record(metrics.injectQueueDepth)
            handles.threadsAlive.record(metrics.threadsAlive)
            handles.backupThreadsAlive.record(metrics.backupThreadsAlive)
        }
    }

    func probeSchedulingDelay() {
        sampleSchedulingDelay(on: pool, into: schedulingDelay)
    }
}
