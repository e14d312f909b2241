import CIOPoolShims
import Synchronization

/// One worker of a ``WorkStealingPool``: its identity (index), its local run queue and LIFO slot,
/// its parker and its counters. tokio calls it the worker's "core".
///
/// A worker is not an OS thread. The thread that holds a worker runs it (`WorkStealingPool.runWorker`);
/// `blocking { }` hands the worker to another thread (an idle backup thread or a new one) and keeps
/// the current thread for the blocking call. Only the holding thread touches the fields marked
/// "holder only"; a hand-off passes them on through the thread start or the reserve's mutex, which
/// orders the old holder's last write before the new holder's first read. That is why this class
/// is `@unchecked Sendable`. `queue` is read by stealers (it is built for that); the counters are
/// relaxed atomics read by metrics snapshots.
final class Worker: @unchecked Sendable {
    let index: Int
    let queue = RunQueue()
    let parker = Parker()
    let counters = WorkerCounters()

    // Holder only:
    /// The most recently woken or spawned job (a job pointer); runs next, cannot be stolen.
    var lifoSlot: UInt = 0
    /// False after `maxLifoPollsPerTick` LIFO runs in a row, until the next tick.
    var lifoEnabled = true
    var isSearching = false
    /// True while the holder polls the driver: jobs it wakes are not announced one by one.
    var isPolling = false
    var tick: UInt32 = 0
    /// The job running now, to tell a `Task.yield()` (the running task enqueues itself) from a wake-up.
    var runningJob: UInt = 0
    /// Yielded jobs, run again only once the worker has nothing else (or at its next driver poll):
    /// tokio's `defer` list. Were they pushed straight back, tasks that yield in a loop would keep
    /// the ring non-empty forever and starve the inject queue (tokio's `spawn_many_remote_busy1`).
    var deferred: [UInt] = []
    private var randomState: UInt64

    init(index: Int) {
        self.index = index
        randomState = 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)
    }

    /// xorshift64*: where to start stealing.
    func random(below bound: Int) -> Int {
        randomState ^= randomState >> 12
        randomState ^= randomState << 25
        randomState ^= randomState >> 27
        return Int((randomState &* 0x2545_F491_4F6C_DD1D) >> 33) % bound
    }

    var hasLocalWork: Bool { lifoSlot != 0 || !queue.isEmpty || !deferred.isEmpty }
}

/// A worker's counters: single-writer (the holder) relaxed atomics, read by snapshots.
final class WorkerCounters: Sendable {
    let jobsRun = RelaxedCounter()
    let stealAttempts = RelaxedCounter()
    let steals = RelaxedCounter()
    let parks = RelaxedCounter()
    let unparks = RelaxedCounter()  // written by notifiers: atomic add
    let lifoHits = RelaxedCounter()
    let injectPops = RelaxedCounter()
    /// Time spent in `park`, for the busy time (two clock reads per park, none per job).
    let parkedTime = ParkedTime()
}

/// The pool's view of an OS thread it started: which worker it holds now, if any.
///
/// Thread-confined (one per thread and piece of reserve work), reached through a C `_Thread_local`.
final class WorkerThread {
    unowned(unsafe) let pool: WorkStealingPool
    /// The worker this thread runs; nil once `blocking { }` handed it away.
    var worker: Worker?

    init(pool: WorkStealingPool, worker: Worker) {
        self.pool = pool
        self.worker = worker
    }

    /// The context of the calling thread, if it is one of a pool's.
    @inline(__always)
    static var current: WorkerThread? {
        guard let pointer = ciopool_current_worker_get() else { return nil }
        return Unmanaged<WorkerThread>.fromOpaque(pointer).takeUnretainedValue()
    }
}
