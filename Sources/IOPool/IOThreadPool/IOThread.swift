import CIOPoolShims
import DequeModule
import Glibc
import Synchronization

// Design notes (DESIGN.md has the whole picture).
//
// The loop:
//
// Queues:
// - `local`: a `Deque` touched only by this OS thread, no atomics. Jobs enqueued from this thread
//   (a child task, a continuation resumed by this reactor) go here.
// - `remote`: a mutex-guarded MPSC queue for every other thread. A producer writes the eventfd only
//   if the loop announced it is about to sleep (`sleeping`), and clears that flag as it does, so
//   there is one eventfd write per sleep, not per job (NIO's `_pendingTaskPop`).
//
// One tick: run up to `eventInterval` local jobs; move the remote queue into `local`; poll the
// reactor (blocking only when there is nothing to run, with the next timer as timeout); fire due
// timers. So epoll is polled at least every 61 jobs even when jobs keep coming (fairness).
//
// Two kinds of Swift jobs arrive: task jobs (from tasks that prefer this thread) run with
// `runSynchronously(on: taskExecutor)`, i.e. generic isolation, so a nonisolated async call needs no
// executor switch; actor jobs arrive through the separate serial-executor facet (`asUnownedSerialExecutor()`)
// and run isolated to it. Running task jobs "isolated" to a serial executor would make every
// nonisolated call a needless re-enqueue.
//
// Lifecycle:
//
// One state machine, `Phase`, guarded by the remote queue's lock (SwiftNIO's
// SelectableEventLoop has the same three): **running → draining → closed**.
//
// 1. The pool asks the loop to stop (`requestStop`) once its own tasks are done (or cancelled):
//    `stopRequested`, which the loop notices at its next tick and turns into `draining`.
// 2. `draining`: the loop still accepts and runs every job, from this thread and from any other,
//    exactly as when running. It fails every pending I/O waiter and timer once with an `IOError`
//    (`ECANCELED`, "the IOThread ... has shut down"); from then on new waits, new sockets and new
//    sleeps on it fail at once with the same error, so nothing can wait on it again. It runs
//    rounds of "take the remote queue, run what is queued" until both queues are empty, or for
//    at most `maxDrainRounds` rounds (a task it does not own may yield forever).
// 3. `closed`: entered under the lock in the same step that finds both queues empty (or hits the
//    bound), so no job can slip in between. The loop runs nothing from then on: its jobs (those
//    left over at the bound, and every job enqueued later: a late continuation of a task that
//    the pool did not own, an actor pinned here, a cancellation's clean-up) are forwarded to one
//    thread of `IOThreadPool/default`, always the same one for this loop, in order, so actor
//    jobs stay serial and the loop-confined clean-ups (whose state the loop no longer touches)
//    run one at a time.
// 4. The loop closes its epoll and eventfd (under the reactor's wake lock, so a producer that
//    decided to wake it just before cannot write into a reused descriptor), runs `beforeStop`, and
//    sets `exited`, which the pool's shutdown awaits.
//
// No job is lost and none runs on two threads at once.

/// One thread of an ``IOThreadPool``: a single-threaded event loop with its own epoll reactor and
/// timers, usable as a Swift `TaskExecutor` (tasks prefer it) and `SerialExecutor` (actors pin to it).
///
/// ```swift
/// let thread = pool.next()
/// let task = try thread.spawn {
///     IOThread.current === thread  // true, before and after every await
/// }
/// ```
///
/// Pin an actor to a thread by returning the thread's serial executor:
///
/// ```swift
/// actor ConnectionTable {
///     let thread: IOThread
///     init(thread: IOThread) { self.thread = thread }
///     nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
/// }
/// ```
public final class IOThread: TaskExecutor, SerialExecutor, @unchecked Sendable {
    // Thread-safety of this class: `index`, `name`, `reactor` (its wake()), `remote`, `counters`,
    // `exited` and `accounting` are safe from any thread (immutable, or guarded by a lock, or
    // atomics). `local`, `timers`, `isLoopRunning` and the reactor's other methods are touched only on
    // this loop's OS thread (checked by `isCurrent`).

    /// Jobs run between two polls of the reactor, even when jobs keep coming. From Go's scheduler
    /// and tokio (`event_interval = 61`).
    public static let eventInterval = 61

    /// The 0-based position of this thread in its pool's ``IOThreadPool/threads``.
    public let index: Int
    /// The OS thread's name: the pool's prefix and the 1-based index, e.g. `iopool-1`.
    public let name: String

    let reactor: Reactor
    let accounting: TaskAccounting
    /// The pool's budget of `blocking { }` sections (``IOThreadPool/Configuration/maxBlocking``).
    let blockingCapacity: BlockingCapacity
    /// The pool's rare events (thread start and stop, forwarding after a stop): see `PoolEvents`.
    let events: PoolEvents
    let counters = IOThreadCounters()

    enum LoopJob {
        case task(UnownedJob)
        case isolated(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    /// Where the loop is in its life (see "Lifecycle" above). Only moves forward.
    enum Phase: UInt8, Comparable {
        case running = 0
        /// `requestStop()` ran; the loop has not noticed yet.
        case stopRequested = 1
        /// The loop fails its waiters and runs its remaining jobs; new waits fail at once.
        case draining = 2
        /// The loop runs nothing; jobs enqueued on it are forwarded.
        case closed = 3

        static func < (lhs: Phase, rhs: Phase) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Rounds of the final drain before the loop closes anyway (SwiftNIO bounds its final drain
    /// to 1,000 ticks the same way): a task the pool does not own that yields forever would
    /// otherwise keep a graceful shutdown waiting forever.
    public static let maxDrainRounds = 1_000

    private struct Remote {
        var jobs: [LoopJob] = []
        var sleeping = false
        /// The authoritative phase: producers read it under the lock to queue or forward.
        var phase = Phase.running
    }

    private let remote = Locked(Remote())
    /// A copy of `remote.phase`, written with it under the lock, for readers that take no lock (`isStopped`).
    private let publishedPhase = Atomic<UInt8>(Phase.running.rawValue)
    /// The loop's own copy of the phase, read without a lock on its thread (every sleep and wait
    /// checks it). Written by the loop only, together with `remote.phase`.
    private var loopPhase = Phase.running
    /// Rounds of the final drain so far (kept here: a `blocking { }` hand-off can move the drain
    /// to another OS thread mid-way).
    private var drainRounds = 0
    /// Behind a pointer rather than a stored `var`: every mutation of a class's stored property
    /// through a method call costs a dynamic exclusivity check (two runtime calls and a
    /// thread-local lookup), and the loop pushes and pops here for every job. Loop thread only.
    private let localJobs: UnsafeMutablePointer<Deque<LoopJob>> = {
        let queue = UnsafeMutablePointer<Deque<LoopJob>>.allocate(capacity: 1)
        queue.initialize(to: Deque())
        return queue
    }()
    private var local: Deque<LoopJob> {
        _read { yield localJobs.pointee }
        _modify { yield &localJobs.pointee }
    }
    private var timers = PendingSleeps()
    /// Also run by a thread that takes the loop over from `blocking { }` (`runBlocking`).
    private(set) var afterStart: (@Sendable (Int) -> Void)?
    private var beforeStop: (@Sendable (Int) -> Void)?
    /// Set when the loop has stopped for good (not when `blocking { }` hands it to another thread).
    private let exited = AsyncEvent()
    private var thread: PThread?
    var selfPointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    private lazy var isolation = IOThreadIsolation(thread: self)

    init(
        index: Int, name: String, accounting: TaskAccounting, blockingCapacity: BlockingCapacity,
        events: PoolEvents = .discarding
    ) throws(IOError) {
        self.index = index
        self.name = name
        self.accounting = accounting
        self.blockingCapacity = blockingCapacity
        self.events = events
        self.reactor = try Reactor()
        _ = isolation  // created here, before any other thread can race to create it
    }

    deinit {
        localJobs.deinitialize(count: 1)
        localJobs.deallocate()
    }

    /// The IOThread whose loop runs on the calling OS thread, or `nil` off-pool. One TLS load.
    public static var current: IOThread? {
        guard let pointer = ciopool_current_thread_get() else { return nil }
        return Unmanaged<IOThread>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Whether the caller runs on this thread's loop.
    @inline(__always)
    public var isCurrent: Bool { ciopool_current_thread_get() == selfPointer }

    // MARK: Executor conformances

    /// Enqueues a task job (a task that prefers this thread). Called by the Swift runtime.
    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(.task(UnownedJob(job)))
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// The serial executor that actors use to pin themselves to this thread.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: isolation)
    }

    /// Traps unless called on this thread's loop; makes `assumeIsolated` work for pinned actors.
    public func checkIsolated() {
        usagePrecondition(isCurrent, "expected to run on \(name), but running on \(IOThread.current?.name ?? "a thread outside any IOThreadPool")")
    }

    public func isSameExclusiveExecutionContext(other: IOThread) -> Bool { self === other }

    /// Whether the loop has begun to stop (its pool shut down): from the final drain on, waits,
    /// sleeps and new sockets on it fail at once. Any thread.
    public var isStopped: Bool { phase >= .draining }

    /// The loop's phase (see "Lifecycle"). Any thread.
    var phase: Phase { Phase(rawValue: publishedPhase.load(ordering: .acquiring))! }

    /// Moves the loop to `phase`, with `remote` locked (`state`). Loop thread only.
    private func enter(_ phase: Phase, _ state: inout Remote) {
        state.phase = phase
        loopPhase = phase
        publishedPhase.store(phase.rawValue, ordering: .releasing)
    }

    // MARK: Enqueueing

    /// Runs `body` on this loop, after the jobs already queued. Any thread.
    func execute(_ body: @escaping @Sendable () -> Void) {
        enqueue(.closure(body))
    }

    /// Inlined for the local case (a task resumed by an event of its own loop: once per echoed
    /// message); any other goes through `enqueueRemotely`.
    @inline(__always)
    func enqueue(_ job: LoopJob) {
        if isCurrent {
            local.append(job)
            counters.localEnqueues.bump()
            return
        }
        enqueueRemotely(job)
    }

    @inline(never)
    private func enqueueRemotely(_ job: LoopJob) {
        enum Action { case none, wake, forward }
        let action: Action = remote.withLock { state in
            if state.phase == .closed { return .forward }
            state.jobs.append(job)
            if state.sleeping {
                state.sleeping = false
                return .wake
            }
            return .none
        }
        switch action {
        case .none:
            counters.remoteEnqueues.add(1)
        case .wake:
            counters.remoteEnqueues.add(1)
            counters.eventfdWakeups.add(1)
            reactor.wake()
        case .forward:
            forwardAfterStop(job)
        }
    }

    /// A job that reaches a closed loop runs on the default pool, always on the same thread for
    /// this loop, so that they run in order and one at a time (see "Lifecycle" above).
    private func forwardAfterStop(_ job: LoopJob) {
        let fallback = IOThreadPool.default.threads
        let target = fallback[index % fallback.count]
        precondition(target !== self, "a thread of the default IOThreadPool stopped; it never should")
        events.workForwardedAfterStop(thread: name, index: index)
        target.enqueue(job)
    }

    // MARK: The loop

    /// Starts the OS thread and returns once its loop runs (or the thread failed to start).
    func start(stackSize: Int?, afterStart: (@Sendable (Int) -> Void)?, beforeStop: (@Sendable (Int) -> Void)?) throws(IOPoolError) {
        self.afterStart = afterStart
        self.beforeStop = beforeStop
        let running = Latch()
        do {
            thread = try PThread.start(name: name, stackSize: stackSize) { [self] in
                afterStart?(index)
                events.threadStarted(name: name, index: index)
                running.open()
                driveLoop()
            }
        } catch {
            throw .threadStartFailed(name: name, errno: error)
        }
        running.wait()
    }

    /// Runs the loop on the calling OS thread until it stops, or until `blocking { }` hands it to
    /// another thread (see `runBlocking`, which starts it on the new thread).
    func driveLoop() {
        ciopool_current_thread_set(selfPointer)
        counters.parkedTime.end()  // the loop is born parked (a no-op after a `blocking { }` hand-off)
        let stopped = runLoop()
        ciopool_current_thread_set(nil)
        beforeStop?(index)
        guard stopped else {
            // This thread ran a blocking call for the task whose job just returned: resume it on
            // the loop, which runs elsewhere now.
            _ = BlockingHandOff.resumePendingTask()
            return
        }
        reactor.closeDescriptors()
        counters.parkedTime.begin()  // stopped: idle from now on, for the busy time
        events.threadStopped(name: name, index: index)
        exited.set()
    }

    /// Asks the loop to finish its queued jobs and exit. Any thread; idempotent.
    func requestStop() {
        let wake = remote.withLock { state in
            if state.phase == .running {
                state.phase = .stopRequested
                publishedPhase.store(Phase.stopRequested.rawValue, ordering: .releasing)
            }
            defer { state.sleeping = false }
            return state.sleeping
        }
        if wake { reactor.wake() }
    }

    /// Waits until the OS thread has left its loop (`exited` is the last thing it sets), then
    /// detaches it, so that its resources go back to the system when it returns. Not
    /// `pthread_join`: that would block the calling thread, one of Swift's cooperative pool.
    func waitUntilExited() async {
        await exited.wait()
        thread?.detach()
    }

    /// Joins the OS thread (which must have been asked to stop); blocks the caller. For the
    /// synchronous clean-up of a pool whose init failed.
    func joinThread() {
        thread?.join()
    }

    @inline(__always)
    private func run(_ job: LoopJob) {
        switch job {
        case .task(let job):
            job.runSynchronously(on: asUnownedTaskExecutor())
        case .isolated(let job):
            job.runSynchronously(on: asUnownedSerialExecutor())
        case .closure(let body):
            body()
        }
    }

    /// Runs up to `limit` local jobs; returns how many ran, and false as soon as a job handed the
    /// loop to another thread (`blocking { }`): from then on this thread must not touch the loop.
    private func runLocalJobs(limit: Int) -> (ran: Int, kept: Bool) {
        var ran = 0
        while ran < limit, let job = local.popFirst() {
            run(job)
            ran += 1
            if !isCurrent { return (ran, false) }
        }
        return (ran, true)
    }

    // Named for profilers: the time the loop spends here is time it waited for I/O or timers.
    @inline(never)
    private func waitForWork(timeoutNanoseconds timeout: UInt64?) {
        counters.epollWaits.bump()
        // A wait that may block is a park: timed for the busy-time metric (two clock reads per
        // park, none per job; see `ParkedTime`).
        let parks = timeout != 0
        if parks {
            counters.parks.bump()
            counters.parkedTime.begin()
        }
        let result = reactor.poll(timeoutNanoseconds: timeout)
        if parks { counters.parkedTime.end() }
        counters.events.bump(UInt64(result.events))
    }

    /// The loop. Returns true once it has closed, false if a job handed it to another thread
    /// (which then calls it again, and it goes on where this thread left it).
    private func runLoop() -> Bool {
        while loopPhase == .running {
            let (ran, kept) = runLocalJobs(limit: IOThread.eventInterval)
            guard kept else { return false }
            counters.jobsRun.bump(UInt64(ran))

            let now = timers.isEmpty ? 0 : monotonicNanoseconds()
            timers.fireDue(now: now)
            counters.pendingTimers.set(timers.count)

            let mayBlock = local.isEmpty
            let block = remote.withLock { state -> Bool in
                state.sleeping = false
                if !state.jobs.isEmpty {
                    local.append(contentsOf: state.jobs)
                    state.jobs.removeAll(keepingCapacity: true)
                }
                if state.phase == .stopRequested {
                    enter(.draining, &state)
                    return false
                }
                if mayBlock && local.isEmpty {
                    state.sleeping = true
                    return true
                }
                return false
            }
            if loopPhase != .running { break }
            waitForWork(timeoutNanoseconds: block ? timers.timeout(now: now) : 0)
        }
        return drainAndClose()
    }

    /// Steps 2 and 3 of "Lifecycle": fails what waits on the loop, runs the remaining jobs in
    /// bounded rounds, then closes. Returns like `runLoop`.
    private func drainAndClose() -> Bool {
        if drainRounds == 0 {
            // Once: from now on the reactor refuses registrations, registrations refuse waits and
            // `sleepOnLoop` refuses sleeps, so nothing can be left waiting here.
            reactor.failAll(.loopStopped)
            timers.failAll(IOError.loopStopped("sleep"))
        }
        while true {
            // Closes in the same locked step that finds both queues empty, so no producer can
            // queue a job the loop would never run.
            let closed = remote.withLock { state -> Bool in
                if !state.jobs.isEmpty {
                    local.append(contentsOf: state.jobs)
                    state.jobs.removeAll()
                }
                guard local.isEmpty || drainRounds >= IOThread.maxDrainRounds else { return false }
                enter(.closed, &state)
                return true
            }
            if closed { break }
            drainRounds += 1
            // Only the jobs queued now: what they enqueue waits for the next round, so a task that
            // yields forever cannot keep the round from ending.
            let (ran, kept) = runLocalJobs(limit: local.count)
            counters.jobsRun.bump(UInt64(ran))
            guard kept else { return false }
        }
        // Left over at the bound: they go where every later job goes, in order.
        while let job = local.popFirst() { forwardAfterStop(job) }
        return true
    }

    // MARK: Timers

    /// Pending sleeps on this loop (cancelled ones leave at once). Loop thread only.
    var pendingTimerCount: Int {
        precondition(isCurrent, "pendingTimerCount must be read on the thread itself")
        return timers.count
    }

    /// Suspends the calling task (which must run on this loop) until `deadline`. `SleepDispatcher`
    /// decides which loop.
    func sleepOnLoop(untilNanoseconds deadline: UInt64) async throws {
        precondition(isCurrent, "a loop sleep must be armed on the loop's own thread")
        try Task.checkCancellation()
        // Its timers were failed for good when the drain began: a sleep armed now would never fire.
        guard loopPhase == .running else { throw IOError.loopStopped("sleep") }
        guard deadline > monotonicNanoseconds() else { return }
        let id = timers.makeID()
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                timers.add(id: id, deadline: deadline, continuation)
            }
        } onCancel: {
            // Never touches the timers directly: the job it enqueues runs on this loop after the
            // job that armed the timer, and removes it (resuming the sleep) only if still pending.
            self.execute { self.timers.cancel(id: id) }
        }
    }
}

/// The serial-executor facet of an ``IOThread``: actors pinned to the thread enqueue their jobs
/// here, so the loop can run them isolated to the actor (task jobs run with generic isolation).
final class IOThreadIsolation: SerialExecutor, @unchecked Sendable {  // immutable after init
    unowned let thread: IOThread

    init(thread: IOThread) { self.thread = thread }

    func enqueue(_ job: consuming ExecutorJob) {
        thread.enqueue(.isolated(UnownedJob(job)))
    }

    func checkIsolated() { thread.checkIsolated() }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
