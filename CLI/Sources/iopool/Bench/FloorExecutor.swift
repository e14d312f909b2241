import CIOPoolShims
import Glibc
import Synchronization

/// The floor for `iopool bench scheduler`: the thinnest `TaskExecutor` that can run tokio's six
/// benchmarks, so that "pool ÷ floor" says how much of a pool's time is the pool's own and how much
/// is the Swift runtime's (task creation, `swift_task_switch`, the job's resumption), which no
/// executor can avoid.
///
/// ## Design
///
/// Each thread owns an array of jobs under one pthread mutex. `enqueue` appends; the thread swaps
/// the whole array out under the lock and runs the batch without it (one lock round trip per batch,
/// not per job). An idle thread first spins for up to ``spinNanoseconds`` on an atomic `hasWork`
/// flag, then sleeps on a condition variable, and a producer signals only when the thread said it
/// sleeps (`sleeping`). Without the spin, a thread fed from another one (tokio's remote spawns)
/// drains each job as it comes and sleeps again, a futex wait and wake per task, which would make
/// the "floor" slower than the pools it is meant to bound; without the sleep, an idle floor would
/// take a CPU from the runtime measured next (the benchmarks interleave runtimes on a shared
/// 2-vCPU machine). There is no accounting, no reactor, no timers, no stealing, no fairness, no
/// shutdown draining: it stops only once the benchmarks are done.
///
/// With more than one thread (the pools run with `--threads`, so a fair floor has the same count),
/// placement is the cheapest that keeps a task's jobs local: a job enqueued on one of the floor's
/// threads stays on that thread (a child task, a continuation resumed there, a `Task.yield()`);
/// one enqueued from any other thread goes to the threads in turn (round-robin). No thread ever
/// takes work from another, so a thread left idle stays idle: the floor is a lower bound on the
/// cost per task, not on wall time where a pool's stealing gains parallelism.
///
/// Jobs run with `runSynchronously(on: taskExecutor)` (generic isolation), as IOThread and
/// WorkStealingPool run theirs, so a nonisolated async call needs no executor switch.
final class FloorExecutor: TaskExecutor, @unchecked Sendable {
    // Thread-safety: `threads` is immutable after init; each Worker's state is under its mutex;
    // `nextRemote` is an atomic.
    private let threads: [Worker]
    private let nextRemote = Atomic<Int>(0)

    /// How long an idle thread spins before it sleeps: longer than a remote producer's gap between
    /// two spawns (a few µs), short against the benchmarks' iterations (ms).
    static let spinNanoseconds: UInt64 = 50_000

    init(threadCount: Int, namePrefix: String = "bench-floor-") {
        precondition(threadCount >= 1)
        threads = (0..<threadCount).map { _ in Worker() }
        let executor = UnownedTaskExecutor(ordinary: self)
        for (index, worker) in threads.enumerated() {
            worker.start(executor: executor, name: "\(namePrefix)\(index)")
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if threads.count == 1 {
            threads[0].push(job)
            return
        }
        let current = pthread_self()
        for worker in threads where pthread_equal(worker.thread, current) != 0 {
            worker.push(job)
            return
        }
        threads[nextRemote.wrappingAdd(1, ordering: .relaxed).oldValue % threads.count].push(job)
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Stops and joins the threads. Call only once nothing runs on or is waiting for the floor:
    /// queued jobs are dropped (the benchmarks await every task they start before they return).
    func shutdown() {
        for worker in threads { worker.stop() }
        for worker in threads { pthread_join(worker.thread, nil) }
    }

    /// One thread and its job array.
    private final class Worker: @unchecked Sendable {
        // `queue`, `sleeping` and `stopping` are guarded by `mutex`; `thread` is written once by
        // `start`, before the floor's init returns, so before any enqueue can read it.
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let wakeUp = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private var queue: [UnownedJob] = []
        /// `!queue.isEmpty`, readable without the lock, for the spin.
        private let hasWork = Atomic<Bool>(false)
        private var sleeping = false
        private var stopping = false
        private(set) var thread = pthread_t()

        init() {
            pthread_mutex_init(mutex, nil)
            pthread_cond_init(wakeUp, nil)
            queue.reserveCapacity(1024)
        }

        deinit {
            pthread_cond_destroy(wakeUp)
            pthread_mutex_destroy(mutex)
            wakeUp.deallocate()
            mutex.deallocate()
        }

        func start(executor: UnownedTaskExecutor, name: String) {
            let context = Unmanaged.passRetained(StartContext(worker: self, executor: executor, name: name)).toOpaque()
            let rc = pthread_create(&thread, nil, { argument in
                let context = Unmanaged<StartContext>.fromOpaque(argument!).takeRetainedValue()
                _ = ciopool_set_thread_name(context.name)  // names of at most 15 bytes
                context.worker.run(executor: context.executor)
                return nil
            }, context)
            precondition(rc == 0, "pthread_create failed: \(rc)")
        }

        func push(_ job: UnownedJob) {
            pthread_mutex_lock(mutex)
            queue.append(job)
            hasWork.store(true, ordering: .relaxed)
            let wake = sleeping
            sleeping = false
            pthread_mutex_unlock(mutex)
            if wake { pthread_cond_signal(wakeUp) }
        }

        func stop() {
            pthread_mutex_lock(mutex)
            stopping = true
            pthread_mutex_unlock(mutex)
            pthread_cond_signal(wakeUp)
        }

        private func run(executor: UnownedTaskExecutor) {
            var batch: [UnownedJob] = []
            batch.reserveCapacity(1024)
            pthread_mutex_lock(mutex)
            while true {
                if queue.isEmpty {
                    pthread_mutex_unlock(mutex)
                    spinUntilWork()
                    pthread_mutex_lock(mutex)
                }
                while queue.isEmpty {
                    if stopping {
                        pthread_mutex_unlock(mutex)
                        return
                    }
                    sleeping = true
                    pthread_cond_wait(wakeUp, mutex)
                }
                swap(&queue, &batch)
                hasWork.store(false, ordering: .relaxed)
                pthread_mutex_unlock(mutex)
                for job in batch { job.runSynchronously(on: executor) }
                batch.removeAll(keepingCapacity: true)
                pthread_mutex_lock(mutex)
            }
        }

        /// Returns once `hasWork` is set or ``spinNanoseconds`` have passed.
        private func spinUntilWork() {
            let deadline = now() + FloorExecutor.spinNanoseconds
            while !hasWork.load(ordering: .relaxed) && now() < deadline {}
        }
    }

    private final class StartContext {
        let worker: Worker
        let executor: UnownedTaskExecutor
        let name: String
        init(worker: Worker, executor: UnownedTaskExecutor, name: String) {
            self.worker = worker
            self.executor = executor
            self.name = name
        }
    }
}
