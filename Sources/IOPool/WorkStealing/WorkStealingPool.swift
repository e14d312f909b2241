import CIOPoolShims
import Synchronization

// Design notes (DESIGN.md has the whole picture).
//
// Scheduling:
//
// - Each worker (`Worker`) has a bounded local ring of 256 jobs (`RunQueue`) and a LIFO slot.
//   A job enqueued on a worker's own thread (a spawn, a wake-up) goes to the LIFO slot, displacing
//   the previous occupant to the back of the ring; a `Task.yield()` waits in a deferred list until
//   the worker has nothing else to run or polls the driver (tokio's `defer`). After a job,
//   the LIFO job runs at once, at most `maxLifoPollsPerTick` times in a row (then the slot is
//   off until the next tick), so two tasks passing a message back and forth cannot starve the rest.
// - A full ring moves half of itself to the inject queue (`InjectQueue`), where jobs from outside
//   the pool (other threads, other executors) arrive too.
// - One tick: every `globalQueueInterval` ticks the inject queue is checked first; otherwise the
//   LIFO slot, the ring, then a batch from the inject queue. With nothing local, the worker
//   searches: steals half of a random sibling's ring, then tries the inject queue. Every
//   `eventInterval` ticks it polls the shared driver without blocking, if nobody holds it.
// - With nothing found, it parks (`Parker`): the first parking worker to get the shared driver
//   blocks in `epoll_pwait2` (timers included), the others on their condition variables.
//   Wake-ups follow `Idle`'s policy: one sleeper per new job, only when nobody searches.
// - Threads start lazily: a worker gets a thread when it is first woken, except the first one,
//   whose thread starts in `init`. So a configuration the OS refuses (a stack size it cannot give)
//   throws there, as `IOThreadPool`'s does, and until shutdown some thread always holds a worker:
//   if the OS refuses a thread later, the worker that needed it goes back to sleep and its job
//   waits in the inject queue for a worker that has one. No job is lost and nothing traps.
//
// Shutdown:
//
// One state machine, `Phase` (under `lifecycle`'s lock, mirrored in an atomic for the workers'
// loop checks): **running → stopping → closed**.
//
// 1. `shutdownGracefully()` waits for every spawned task to finish; `shutdown()` cancels them
//    first. (Both through `TaskAccounting`, shared with `IOThreadPool`.)
// 2. `stopping`: no thread starts from now on, every worker is unparked, and each worker thread
//    leaves its loop.
// 3. Once no thread holds a worker, the thread reserve stops: idle backup threads exit, each
//    running `beforeStop`; they are joined.
// 4. The inject queue is closed; jobs left in it and in the local queues (continuations of tasks
//    that were not spawned on the pool but prefer it) run on `IOThreadPool/default`, as do jobs
//    enqueued from then on. No job is lost.
// 5. The shared driver fails waiting I/O and sleeps (`ECANCELED`, "the WorkStealingPool ... has
//    shut down") and closes its descriptors: `closed`.

/// A work-stealing pool of worker threads with a shared I/O driver and `blocking { }`: the design of
/// the Rust crate tokio-threadpool, with what tokio's 2019 scheduler rewrite learned. It is a Swift
/// `TaskExecutor`: tasks spawned on it (and their `async let` and task-group children) run on its
/// workers, and may move between them. A task group's children spread by themselves (they are queued
/// on the parent's worker, and idle workers steal them), so this pool has no counterpart of
/// ``IOThreadPool/withSpreadingDiscardingTaskGroup(body:)``: a plain `withDiscardingTaskGroup` does.
///
/// ```swift
/// let pool = try WorkStealingPool(configuration: .init(threadCount: 4))
/// let task = try pool.spawn {
///     let digest = try await blocking { expensiveSynchronousHash() }  // the pool keeps running
///     return digest
/// }
/// print(try await task.value)
/// await pool.shutdownGracefully()
/// ```
///
/// Prefer it to ``IOThreadPool`` when tasks are uneven (some long, some short, some blocking):
/// idle workers steal from busy ones. Prefer ``IOThreadPool`` for many short I/O operations, where
/// keeping a socket's task on its reactor's thread avoids cross-thread wake-ups.
public final class WorkStealingPool: TaskExecutor, @unchecked Sendable {
    // Thread-safety: every stored property is immutable, atomic, or guarded by its own lock
    // (`lifecycle`, the queues', the reserve's); `Worker` documents its holder-only fields.

    /// Ticks between two non-blocking polls of the shared driver by a busy worker. From tokio
    /// (`event_interval = 61`) and Go.
    public static let eventInterval: UInt32 = 61
    /// Ticks between two checks of the inject queue ahead of the local queue, so that jobs from
    /// outside are not starved by a worker that always has local work. From Go and tokio (61).
    public static let globalQueueInterval: UInt32 = 61
    /// LIFO-slot jobs run in a row before the slot is disabled until the next tick. From tokio
    /// (`MAX_LIFO_POLLS_PER_TICK = 3`).
    public static let maxLifoPollsPerTick = 3

    /// Number of workers.
    public var threadCount: Int { workers.count }

    let workers: [Worker]
    let inject = InjectQueue()
    let idle: Idle
    let driver: SharedDriver
    let reserve: ThreadReserve
    let accounting: TaskAccounting
    let capacity: BlockingCapacity
    /// The pool's name, `WorkStealingPool(` + the thread name prefix + `*)`, as in its log metadata
    /// and errors.
    public let name: String
    /// The pool's rare events (thread start and stop, forwarding after a stop): see `PoolEvents`.
    let events: PoolEvents

    /// Where the pool is in its life (see "Shutdown" above). Only moves forward.
    enum Phase: UInt8, Comparable {
        case running = 0
        /// Workers leave their loops; no thread starts.
        case stopping = 1
        /// The queues are closed (their jobs forwarded) and the driver has stopped.
        case closed = 2

        static func < (lhs: Phase, rhs: Phase) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    private struct Lifecycle {
        var phase = Phase.running
        /// Workers held by a thread (started and not yet released at shutdown).
        var activeWorkers = 0
    }
    private let lifecycle = Locked(Lifecycle())
    /// `lifecycle.phase`, for the workers' loops, which check it on every turn without the lock.
    private let publishedPhase = Atomic<UInt8>(Phase.running.rawValue)
    private let stopOnce = AsyncOnce()
    /// Set once `stopping` and no thread holds a worker.
    private let workersReleased = AsyncEvent()

    /// Workers held by a thread now.
    var activeWorkerCount: Int { lifecycle.withLock { $0.activeWorkers } }

    /// Builds the pool and starts its first worker's thread (the others start when work arrives).
    /// - Throws: ``IOPoolError/invalidConfiguration(_:)`` for a thread count or `maxBlocking` below 1,
    ///   ``IOPoolError/reactorFailed(_:)`` if the shared epoll instance cannot be created,
    ///   ``IOPoolError/threadStartFailed(name:errno:)`` if the OS refuses the first thread (e.g. the
    ///   configured `stackSize`).
    public init(configuration: Configuration = Configuration()) throws(IOPoolError) {
        guard configuration.threadCount >= 1 else {
            throw .invalidConfiguration("threadCount must be at least 1, got \(configuration.threadCount)")
        }
        guard configuration.maxBlocking >= 1 else {
            throw .invalidConfiguration("maxBlocking must be at least 1, got \(configuration.maxBlocking)")
        }
        guard configuration.keepAlive >= .zero else {
            throw .invalidConfiguration("keepAlive must not be negative, got \(configuration.keepAlive)")
        }
        name = "WorkStealingPool(\(configuration.threadNamePrefix)*)"
        do {
            driver = try SharedDriver()
        } catch {
            throw .reactorFailed(error)
        }
        workers = (0..<configuration.threadCount).map { Worker(index: $0) }
        idle = Idle(workerCount: configuration.threadCount)
        accounting = TaskAccounting(poolName: name)
        let events = PoolEvents(logger: configuration.logger, poolName: name, poolKind: "WorkStealingPool")
        self.events = events
        capacity = BlockingCapacity(limit: configuration.maxBlocking, events: events)
        // Thread start and stop are logged around the user's hooks, once per OS thread the reserve
        // starts (workers and backup threads alike).
        let afterStart = configuration.afterStart
        let beforeStop = configuration.beforeStop
        reserve = ThreadReserve(
            .init(
                namePrefix: configuration.threadNamePrefix, stackSize: configuration.stackSize,
                keepAliveNanoseconds: configuration.keepAlive.wholeNanoseconds,
                afterStart: { number in
                    afterStart?(number)
                    events.threadStarted(name: PoolEvents.currentOSThreadName())
                },
                beforeStop: { number in
                    events.threadStopped(name: PoolEvents.currentOSThreadName())
                    beforeStop?(number)
                }))
        try startFirstWorker()
    }

    /// Wakes the first worker the way a first job would (`Idle` counts it woken and searching), so
    /// its thread starts now; it finds nothing and parks.
    private func startFirstWorker() throws(IOPoolError) {
        guard let (index, needsThread) = idle.workerToNotify(), needsThread else {
            preconditionFailure("a new pool has only sleeping workers without threads")
        }
        let worker = workers[index]
        worker.isSearching = true
        do {
            try startThreadOrThrow(for: worker)
        } catch {
            driver.stop()  // nothing waits on it yet: this only closes its descriptors
            throw error
        }
    }

    /// The pool whose worker runs the calling code, if any.
    public static var current: WorkStealingPool? {
        guard let thread = WorkerThread.current, thread.worker != nil else { return nil }
        return thread.pool
    }

    /// Whether the caller runs on one of this pool's workers.
    public var isCurrent: Bool {
        guard let thread = WorkerThread.current else { return false }
        return thread.pool === self && thread.worker != nil
    }

    var phase: Phase { Phase(rawValue: publishedPhase.load(ordering: .acquiring))! }

    /// Whether shutdown has reached its `stopping` step: workers leave their loops.
    var isShuttingDown: Bool { phase >= .stopping }

    /// Moves the pool to `phase`, with `lifecycle` locked (`state`).
    private func enter(_ phase: Phase, _ state: inout Lifecycle) {
        state.phase = phase
        publishedPhase.store(phase.rawValue, ordering: .releasing)
    }

    // MARK: TaskExecutor

    /// Enqueues a job of a task that prefers this pool. Called by the Swift runtime.
    public func enqueue(_ job: consuming ExecutorJob) {
        schedule(unsafeBitCast(UnownedJob(job), to: UInt.self))
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    // MARK: Spawning

    /// Starts `operation` as a new task on the pool. Called on one of the pool's workers, the task
    /// goes to that worker's LIFO slot; from anywhere else, to the inject queue.
    /// - Throws: ``IOPoolError/shutDown(pool:)`` once the pool has shut down.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async -> Success
    ) throws(IOPoolError) -> Task<Success, Never> {
        try accounting.admitAndStart(on: self, operation)
    }

    /// Starts a throwing `operation` as a new task on the pool.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async throws -> Success
    ) throws(IOPoolError) -> Task<Success, any Error> {
        try accounting.admitAndStart(on: self, operation)
    }

    /// Number of tasks spawned on the pool that have not finished.
    public var liveTaskCount: Int { accounting.liveCount }

    // MARK: Shutdown

    /// Waits until every task spawned on the pool has finished (tasks may keep spawning children
    /// meanwhile), then stops the threads. tokio-threadpool's `shutdown_on_idle`.
    ///
    /// Idempotent. Must not be awaited from a task of this pool, which would wait for itself.
    ///
    /// On the pool that is Swift's global executor (``unsafeInstallAsGlobalExecutor(configuration:)``)
    /// it waits for the spawned tasks only: the workers keep running (and it may be awaited on them).
    public func shutdownGracefully() async {
        preconditionNotOnPool("shutdownGracefully()")
        await accounting.drain()
        await stop()
    }

    /// Cancels every live task spawned on the pool, waits for them to unwind, then stops the
    /// threads. A task inside `blocking { }` finishes its blocking call first (a synchronous call
    /// cannot be interrupted); one still waiting for blocking capacity throws `CancellationError`
    /// without running its call. Idempotent; escalates a graceful shutdown in progress.
    ///
    /// On the pool that is Swift's global executor (``unsafeInstallAsGlobalExecutor(configuration:)``)
    /// it cancels and waits for the spawned tasks only: the workers keep running.
    public func shutdown() async {
        preconditionNotOnPool("shutdown()")
        await accounting.cancelAll()
        await stop()
    }

    private func preconditionNotOnPool(_ function: String) {
        usagePrecondition(
            !isCurrent || isGlobalExecutor,
            "\(function) awaited on a worker of the pool it shuts down would wait for itself; call it from outside the pool (e.g. a plain Task)")
    }

    private func stop() async {
        // The global executor's workers run every plain task of the process: they never stop.
        guard !isGlobalExecutor else { return }
        await stopOnce.run { await runShutdownSequence() }
    }

    /// The shutdown sequence, steps 2-5 (see the type's documentation); runs once.
    private func runShutdownSequence() async {
        // Step 2: no thread starts from now on; workers leave their loops.
        let noneActive = lifecycle.withLock { state -> Bool in
            enter(.stopping, &state)
            return state.activeWorkers == 0
        }
        if noneActive { workersReleased.set() }
        for worker in workers { worker.parker.unpark(driver: driver) }
        await workersReleased.wait()
        // Step 3: backup threads exit.
        reserve.stop()
        await reserve.waitUntilStopped()
        // Step 4: no job is lost.
        var leftovers = inject.close()
        for worker in workers {
            if worker.lifoSlot != 0 { leftovers.append(worker.lifoSlot) }
            worker.lifoSlot = 0
            leftovers.append(contentsOf: worker.deferred)
            worker.deferred = []
            leftovers.append(contentsOf: worker.queue.drain())
        }
        for job in leftovers { forwardAfterStop(job) }
        // Step 5.
        driver.stop()
        lifecycle.withLock { enter(.closed, &$0) }
    }

    /// A job that reaches the stopped pool runs on ``IOThreadPool/default`` (see "Shutdown"),
    /// always on the same thread of it: a task goes on hopping to this pool (its preference) at
    /// every nonisolated call, and code that looked up "the loop I run on" before a hop (a sleep
    /// arming its timer) must find itself on that loop after it.
    func forwardAfterStop(_ job: UInt) {
        events.workForwardedAfterStop(thread: PoolEvents.currentOSThreadName())
        forwardingTarget.enqueue(.task(unsafeBitCast(job & ~WorkStealingPool.globalJobTag, to: UnownedJob.self)))
    }

    private var forwardingTarget: IOThread { IOThreadPool.default.threads[0] }

    // MARK: Threads

    /// Starts (or reuses) a thread for a worker that has none; false if the OS refused. The worker
    /// then goes back to sleep without a thread (a later wake-up tries again) and the job that woke
    /// it runs on a worker that has one (`notifyParked` wakes another): the first worker holds a
    /// thread from `init` to shutdown.
    func startThread(for worker: Worker) -> Bool {
        do {
            try startThreadOrThrow(for: worker)
            return true
        } catch {
            return false
        }
    }

    private func startThreadOrThrow(for worker: Worker) throws(IOPoolError) {
        let admitted = lifecycle.withLock { state -> Bool in
            if state.phase != .running { return false }
            state.activeWorkers += 1
            return true
        }
        guard admitted else { return }
        do {
            try reserve.run { [self] in runThread(holding: worker) }
        } catch {
            idle.threadStartFailed(worker.index)
            // Released as a thread leaving at shutdown would be: the last one lets shutdown go on.
            workerReleased()
            throw error
        }
    }

    /// The body of a reserve thread that holds `worker`.
    func runThread(holding worker: Worker) {
        let thread = WorkerThread(pool: self, worker: worker)
        ciopool_current_worker_set(Unmanaged.passUnretained(thread).toOpaque())
        worker.counters.parkedTime.end()  // a worker is born parked (a no-op after a hand-off)
        runWorker(worker, on: thread)
        ciopool_current_worker_set(nil)
        if !BlockingHandOff.resumePendingTask() {
            worker.counters.parkedTime.begin()  // stopped: idle from now on, for the busy time
            workerReleased()  // the loop ended because the pool shuts down
        }
        // Otherwise `blocking { }` handed the worker to another thread and ran its call here; the
        // task is back on the pool and this thread is a backup thread from now on.
    }

    private func workerReleased() {
        let lastAtShutdown = lifecycle.withLock { state -> Bool in
            state.activeWorkers -= 1
            return state.activeWorkers == 0 && state.phase >= .stopping
        }
        if lastAtShutdown { workersReleased.set() }
    }
}
