import CIOPoolShims
import Synchronization

// A WorkStealingPool as Swift's global executor, through the runtime's enqueue hooks.
//
// Why the hooks and not Swift 6.3's `ExecutorFactory` (SE-0466 custom global executors): in the
// 6.3 toolchain that API is `@_spi(ExperimentalCustomExecutors)` (only in the private module
// interface), and the factory is chosen by the main program (`typealias DefaultExecutorFactory` on
// the `@main` type, or `-executor-factory`), so a library can neither name it stably nor install it
// for its users. The hooks (`swift_task_enqueueGlobal_hook` and its two delayed siblings) are what
// SwiftNIO uses for `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`;
// the 6.3 runtime still consults them first in `swift_task_enqueueGlobal`, before any executor
// factory's default executor.
//
// What goes through which hook in Swift 6.3.1 (measured, not only read):
// - `swift_task_enqueueGlobal`: every job of a task without an executor preference (`Task {}`,
//   `Task.detached`, task-group children and `async let` of such tasks, continuations resumed
//   for them), every default actor that becomes runnable, and `globalConcurrentExecutor`'s jobs.
//   Each goes to `schedule` as a job enqueued by the runtime for the pool would: the LIFO slot when
//   the caller is one of its workers, otherwise the inject queue.
// - `Task.sleep`: the 6.3 runtime arms it on `Task.currentSchedulingExecutor`, which for a task
//   without a scheduling executor is the runtime's default executor (Dispatch), directly, without
//   the delayed hooks: Dispatch's timer runs a tiny wake-up job on a Dispatch thread, which resumes
//   the sleeping task through `swift_task_enqueueGlobal`, so the task goes on on the pool.
// - `swift_task_enqueueGlobalWithDelay` / `..WithDeadline`: what older runtimes used for
//   `Task.sleep`, and what the runtime falls back to when its default executor cannot schedule.
//   Delayed jobs wait on the pool's own timers (the shared driver's heap, as `sleep(for:)`), in a
//   small task per job, then are scheduled as above. Tolerances are ignored; a clock the shim
//   does not know is left to the runtime's implementation (Dispatch).
//
// Guards, as NIO's: at most one installation per process (an atomic flag here, a compare-exchange
// on the runtime's variable in the shim, which also fails if another library installed first);
// never uninstalled. Unlike NIO's it may be called after tasks have run (a test process, a late
// opt-in): each enqueue reads the hook afresh, so jobs enqueued before stay where they were and
// every later one comes to the pool.

extension WorkStealingPool {
    /// Makes a new pool Swift's global executor for the whole process, for as long as the process
    /// lives, and returns it: from then on `Task {}`, `Task.detached`, the children of their task
    /// groups and `async let`s, nonisolated async functions they call, default actors and every
    /// library's unstructured tasks run on the pool's workers, next to its reactor and timers. Their
    /// sockets then wait on the pool's shared driver (no hop to ``IOThreadPool/default``), their
    /// ``blocking(_:)`` sections hand off the worker as on a spawned task, and `spawn` (the
    /// free function) spawns onto this pool. SwiftNIO offers the same for its event loops
    /// (`NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`).
    ///
    /// ```swift
    /// // First thing in `main` (main.swift's top level, or an `@main` type's `main()`):
    /// let pool = try WorkStealingPool.unsafeInstallAsGlobalExecutor()
    /// Task { /* runs on `pool` */ }
    /// ```
    ///
    /// It is "unsafe" in NIO's sense: process-wide and irreversible. Know before you call it:
    /// - **Call it once, first thing in `main`**, before starting tasks. A second call throws. Jobs
    ///   enqueued before the call stay on Swift's default executor (Dispatch) until they next
    ///   suspend; every job enqueued after it comes to the pool.
    /// - **The pool never stops.** ``shutdownGracefully()`` and ``shutdown()`` still wait for (or
    ///   cancel) the tasks started with `spawn`, which throws ``IOPoolError/shutDown(pool:)``
    ///   afterwards, but the workers, the reactor and the timers keep running: they are the global
    ///   executor, and every plain task of the process needs them. (So they are also allowed on the
    ///   pool's own workers, where every plain task now runs.) The threads end with the process.
    /// - **A blocking call in a plain task now blocks a pool worker**, which may be the one that
    ///   polls the reactor, so I/O and timers of other tasks wait too, as on any worker: wrap
    ///   blocking work in ``blocking(_:)``. The pool has `configuration.threadCount` workers (the
    ///   CPUs by default), about as many threads as Dispatch gives Swift's default executor.
    /// - **Priorities are ignored**: jobs run in the pool's order (LIFO slot, local ring, inject
    ///   queue, stealing), whatever their `TaskPriority`; no priority escalation.
    /// - **The main actor is unaffected**: `@MainActor` code (and top-level code) still runs on the
    ///   main thread through Dispatch's main queue. Actors with a custom executor, tasks with an
    ///   executor preference (``IOThreadPool`` spawns) and Dispatch queues are unaffected too.
    /// - **`Task.sleep` keeps Swift's timers**: on Swift 6.3 the runtime arms it on Dispatch
    ///   directly (the hooks are not asked); the task resumes on the pool. The library's
    ///   `sleep(for:)` and ``IOClock`` use the pool's timers.
    /// - It relies on the Swift runtime's `swift_task_enqueueGlobal_hook`, which Swift exports but
    ///   does not document as API (NIO relies on it too): a future runtime could ignore it, and
    ///   then tasks would simply stay on the default executor.
    ///
    /// - Parameter configuration: the pool's configuration, as for ``init(configuration:)``.
    /// - Returns: the installed pool (also ``globalExecutor``).
    /// - Throws: ``IOPoolError/globalExecutorInstallFailed(_:)`` if a pool was installed before in
    ///   this process, or if another library already redirected Swift's global executor (its hook
    ///   is kept, nothing is changed); the errors of ``init(configuration:)`` for the configuration
    ///   (then nothing is installed, and the call may be made again).
    public static func unsafeInstallAsGlobalExecutor(
        configuration: Configuration = Configuration()
    ) throws(IOPoolError) -> WorkStealingPool {
        guard GlobalExecutorInstallation.attempted.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw .globalExecutorInstallFailed(
                "unsafeInstallAsGlobalExecutor was called before in this process; install at most once")
        }
        guard ciopool_global_executor_hooks_free() != 0 else {
            throw .globalExecutorInstallFailed(
                "another library already redirected Swift's global executor (swift_task_enqueueGlobal_hook is set)")
        }
        let pool: WorkStealingPool
        do {
            pool = try WorkStealingPool(configuration: configuration)
        } catch {
            GlobalExecutorInstallation.attempted.store(false, ordering: .releasing)  // nothing changed: may be retried
            throw error
        }
        // Published before the hook, so that the pool's shutdown knows it is the global executor
        // by the time any job reaches it; kept for the life of the process (as the retain below).
        GlobalExecutorInstallation.pool.withLock { $0 = pool }
        let context = Unmanaged.passRetained(pool).toOpaque()
        let result = ciopool_global_executor_install(
            context,
            { context, job in
                Unmanaged<WorkStealingPool>.fromOpaque(context!).takeUnretainedValue()
                    .schedule(UInt(bitPattern: job) | WorkStealingPool.globalJobTag)
            },
            { context, job, delay in
                Unmanaged<WorkStealingPool>.fromOpaque(context!).takeUnretainedValue()
                    .scheduleDelayed(UInt(bitPattern: job) | WorkStealingPool.globalJobTag, afterNanoseconds: delay)
            })
        guard result == 0 else {
            // Another library won a race with us for the hook: its hook stays; this pool goes.
            GlobalExecutorInstallation.pool.withLock { $0 = nil }
            Unmanaged<WorkStealingPool>.fromOpaque(context).release()
            Task { await pool.shutdown() }
            throw .globalExecutorInstallFailed(
                "another library redirected Swift's global executor meanwhile (swift_task_enqueueGlobal_hook was set)")
        }
        return pool
    }

    /// The pool installed by ``unsafeInstallAsGlobalExecutor(configuration:)``, if any.
    public static var globalExecutor: WorkStealingPool? {
        GlobalExecutorInstallation.pool.withLock { $0 }
    }

    /// Whether this pool is Swift's global executor (see ``unsafeInstallAsGlobalExecutor(configuration:)``):
    /// then its shutdown leaves its workers running.
    public var isGlobalExecutor: Bool {
        GlobalExecutorInstallation.pool.withLock { $0 === self }
    }

    /// Marks a job from the runtime's global queue in the pool's queues (job pointers are aligned,
    /// so bit 0 is free): such a job runs as Swift's default global executor runs it, see
    /// `runGlobalJob`.
    static let globalJobTag: UInt = 1

    /// Runs a job of the global queue on the *generic* executor (`SerialExecutorRef::generic()`,
    /// both words zero), as Dispatch's global executor does (`swift_job_run(job, generic)`), not
    /// "on" the pool as a task executor: its task has no executor preference, and run with the pool
    /// as its current task executor, every nonisolated async call of it would count as a switch
    /// (current task executor ≠ preferred) and hop through the queue, so that `blocking { }`'s
    /// resume-after-job (a thread-local of the thread that ran the body) would be taken by another
    /// thread, and the task would never resume.
    @inline(__always)
    func runGlobalJob(_ job: UInt) {
        let generic = unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self)
        unsafeBitCast(job & ~WorkStealingPool.globalJobTag, to: UnownedJob.self).runSynchronously(on: generic)
    }

    /// A job the runtime wants run after `delay` nanoseconds: it waits on the shared driver's timers
    /// in a task of its own, then is scheduled like any other job. A timer the stopped driver
    /// fails cannot happen here (the installed pool does not stop), but would still schedule it:
    /// no job is lost.
    func scheduleDelayed(_ job: UInt, afterNanoseconds delay: UInt64) {
        guard delay > 0 else { return schedule(job) }
        let deadline = monotonicDeadline(afterNanoseconds: delay)
        Task(executorPreference: self) { [driver] in
            try? await driver.sleep(untilNanoseconds: deadline)
            self.schedule(job)
        }
    }
}

/// The process's one installation (see `unsafeInstallAsGlobalExecutor`).
private enum GlobalExecutorInstallation {
    /// Set by the first call; reset only if that call failed before touching the runtime.
    static let attempted = Atomic<Bool>(false)
    static let pool = Locked<WorkStealingPool?>(nil)
}
