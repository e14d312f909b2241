/// The labels under which ``PoolMetricsReporter`` exports a pool's figures: stable names, changed
/// only with a major version. Prometheus-style (`snake_case`, counters end in `_total`), so they
/// pass any backend's name check.
///
/// Dimensions:
/// - every metric: `pool`, the pool's name (``PoolMetricsReporter/Configuration/poolName``, by
///   default `IOThreadPool/name` or `WorkStealingPool/name`, e.g. `IOThreadPool(iopool-*)`);
/// - `iopool_thread_*`: also `thread`, the `IOThread`'s name (`iopool-1`, ...);
/// - `iopool_worker_*`: also `worker`, the worker's 0-based index (`"0"`, `"1"`, ...).
///
/// Counters are exported as increments: each report adds what the pool's counters grew by since
/// the last report (the first report adds everything since the pool started), so a counter's
/// total in the backend is the pool's count. Gauges are set to the value at the report. The
/// timers record one nanosecond duration per sample.
public enum PoolMetricNames {
    // MARK: Both pools, dimension `pool`

    /// Gauge: tasks spawned on the pool (`spawn`) that have not finished.
    public static let liveTasks = "iopool_live_tasks"
    /// Gauge: `blocking { }` sections holding a unit of the pool's `maxBlocking` capacity.
    public static let blockingRunning = "iopool_blocking_running"
    /// Gauge: `blocking { }` sections waiting for a unit of capacity.
    public static let blockingWaiting = "iopool_blocking_waiting"

    // MARK: IOThreadPool, dimensions `pool`, `thread`

    /// Counter: jobs the thread's loop ran (task jobs, actor jobs, internal closures).
    public static let threadJobs = "iopool_thread_jobs_total"
    /// Counter: jobs enqueued from the loop's own thread.
    public static let threadLocalEnqueues = "iopool_thread_local_enqueues_total"
    /// Counter: jobs enqueued from other threads (the remote queue).
    public static let threadRemoteEnqueues = "iopool_thread_remote_enqueues_total"
    /// Counter: eventfd writes that woke the sleeping loop.
    public static let threadWakeups = "iopool_thread_wakeups_total"
    /// Counter: polls of the loop's reactor (`epoll_wait` calls, blocking or not).
    public static let threadPolls = "iopool_thread_polls_total"
    /// Counter: I/O readiness events the loop's reactor delivered.
    public static let threadEvents = "iopool_thread_events_total"
    /// Counter: parks, i.e. polls that could block because the loop had nothing to run.
    public static let threadParks = "iopool_thread_parks_total"
    /// Counter: nanoseconds the loop was busy (not parked in `epoll_wait`): busy ratio =
    /// rate of this / 1e9.
    public static let threadBusyNanoseconds = "iopool_thread_busy_nanoseconds_total"
    /// Gauge: sockets registered with the loop's epoll instance.
    public static let threadRegisteredSockets = "iopool_thread_registered_sockets"
    /// Gauge: sleeps armed on the loop's timers (as of the loop's last turn).
    public static let threadPendingTimers = "iopool_thread_pending_timers"
    /// Timer: scheduling delay, sampled: the time from enqueueing a probe job on the thread (from
    /// a thread outside the pool) until the loop starts running it. One sample per thread per
    /// report (``PoolMetricsReporter/Configuration/samplesSchedulingDelay``).
    public static let threadSchedulingDelay = "iopool_thread_scheduling_delay"

    // MARK: WorkStealingPool, dimensions `pool`, `worker`

    /// Counter: jobs the worker ran.
    public static let workerJobs = "iopool_worker_jobs_total"
    /// Counter: siblings' queues the worker tried to steal from.
    public static let workerStealAttempts = "iopool_worker_steal_attempts_total"
    /// Counter: steal attempts that took jobs.
    public static let workerSteals = "iopool_worker_steals_total"
    /// Counter: times the worker parked (went to sleep with nothing to do).
    public static let workerParks = "iopool_worker_parks_total"
    /// Counter: times another thread woke the worker.
    public static let workerUnparks = "iopool_worker_unparks_total"
    /// Counter: jobs run straight from the LIFO slot.
    public static let workerLIFOHits = "iopool_worker_lifo_hits_total"
    /// Counter: jobs the worker took from the inject queue.
    public static let workerInjectPops = "iopool_worker_inject_pops_total"
    /// Counter: nanoseconds the worker was busy (not parked).
    public static let workerBusyNanoseconds = "iopool_worker_busy_nanoseconds_total"
    /// Gauge: jobs in the worker's local run queue.
    public static let workerLocalQueueDepth = "iopool_worker_local_queue_depth"

    // MARK: WorkStealingPool, dimension `pool`

    /// Counter: polls of the shared I/O driver (`epoll_wait`, blocking or not).
    public static let driverPolls = "iopool_driver_polls_total"
    /// Counter: I/O readiness events the shared driver delivered.
    public static let driverEvents = "iopool_driver_events_total"
    /// Gauge: sockets registered with the shared driver.
    public static let registeredSockets = "iopool_registered_sockets"
    /// Gauge: sleeps armed on the shared driver's timers.
    public static let pendingTimers = "iopool_pending_timers"
    /// Gauge: jobs in the inject queue.
    public static let injectQueueDepth = "iopool_inject_queue_depth"
    /// Gauge: OS threads the pool has started that are alive (workers and backup threads).
    public static let threadsAlive = "iopool_threads_alive"
    /// Gauge: alive threads that hold no worker (in a blocking call, or idle until `keepAlive`).
    public static let backupThreadsAlive = "iopool_backup_threads_alive"
    /// Timer: scheduling delay, sampled: the time from enqueueing a probe job on the pool (from a
    /// thread outside it, so through the inject queue) until a worker starts running it. One sample
    /// per report.
    public static let schedulingDelay = "iopool_scheduling_delay"
}
