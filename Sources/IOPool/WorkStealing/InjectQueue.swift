import DequeModule
import Synchronization

/// The pool's shared FIFO queue: jobs enqueued from outside the pool (a spawn from a plain task, a
/// continuation resumed by another thread), and local overflow. tokio keeps it as a list under a
/// mutex; we keep a `Deque` under a pthread mutex, plus an atomic length so that workers can see
/// "empty" without taking the lock (the common case on a busy worker's every 61st tick).
///
/// Once `close()` ran (the pool stopped), pushes are refused and the caller forwards the job
/// elsewhere (see `WorkStealingPool`'s shutdown sequence).
final class InjectQueue: Sendable {
    private struct State {
        var jobs = Deque<UInt>()
        var closed = false
    }

    private let state = Locked(State())
    private let length = Atomic<Int>(0)

    var isEmpty: Bool { length.load(ordering: .acquiring) == 0 }
    var count: Int { length.load(ordering: .acquiring) }

    /// Appends `job`; false if the queue is closed.
    @discardableResult
    func push(_ job: UInt) -> Bool {
        state.withLock { state in
            if state.closed { return false }
            state.jobs.append(job)
            length.wrappingAdd(1, ordering: .releasing)
            return true
        }
    }

    /// Appends a batch (local-queue overflow). The pool is running when this is called (a worker
    /// holds its core), so the queue cannot be closed.
    func push(contentsOf jobs: [UInt]) {
        state.withLock { state in
            precondition(!state.closed, "overflow into a closed inject queue")
            state.jobs.append(contentsOf: jobs)
            length.wrappingAdd(jobs.count, ordering: .releasing)
        }
    }

    func pop() -> UInt? {
        if isEmpty { return nil }
        return state.withLock { state in
            guard let job = state.jobs.popFirst() else { return nil }
            length.wrappingSubtract(1, ordering: .releasing)
            return job
        }
    }

    /// Pops up to `limit` jobs in FIFO order.
    func pop(upTo limit: Int) -> [UInt] {
        if isEmpty || limit <= 0 { return [] }
        return state.withLock { state in
            let n = min(limit, state.jobs.count)
            guard n > 0 else { return [] }  // emptied since the look above; see `copy(_:)`
            let batch = InjectQueue.copy(state.jobs.prefix(n))
            state.jobs.removeFirst(n)
            length.wrappingSubtract(n, ordering: .releasing)
            return batch
        }
    }

    /// Refuses later pushes and returns what was queued.
    func close() -> [UInt] {
        state.withLock { state in
            state.closed = true
            defer { state.jobs = [] }
            length.store(0, ordering: .releasing)
            return InjectQueue.copy(state.jobs[...])
        }
    }

    /// The jobs as an `Array`. Copying an empty `Deque` (or slice of one) into an `Array` writes the
    /// count into the standard library's one shared empty-array storage (Swift 6.x), so two pools
    /// closing empty queues at once race on it, and ThreadSanitizer reports it; `[]` writes nothing.
    private static func copy(_ jobs: Slice<Deque<UInt>>) -> [UInt] {
        jobs.isEmpty ? [] : Array(jobs)
    }
}
