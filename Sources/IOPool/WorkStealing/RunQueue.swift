import Synchronization

/// A worker's local run queue: a bounded ring of ``RunQueue/capacity`` jobs with one producer (the
/// thread that holds the worker) and many consumers (that thread, and stealers). Go's `runq`, which
/// tokio's 2019 scheduler adopted.
///
/// ## Invariants
///
/// - `head` and `tail` are free-running `UInt32` counters; the jobs are `slots[head % capacity]
///   ..< slots[tail % capacity]`, and `tail &- head <= capacity` always.
/// - Only the owner writes `tail` and the slots at `tail` (store-release of `tail` publishes the
///   slot). Consumers claim jobs by a CAS on `head`; a consumer copies the slots it wants *before*
///   its CAS, and the CAS fails if anyone (owner pop, another stealer) moved `head` meanwhile, so a
///   slot copied while the producer overwrote it is never used.
/// - Slots are relaxed atomics only so that ThreadSanitizer sees the copy-then-CAS pattern; on
///   x86-64 they compile to plain moves.
/// - Stealers take half (`n - n/2`) of what they see; a reading of `tail - head` above half the
///   capacity is inconsistent (both loads were not taken at one instant) and is retried.
/// - When the ring is full, the owner moves half of it (plus the new job) to the inject queue in one
///   batch (`overflow`), so pushes stay O(1) amortised and the other workers can find the work.
final class RunQueue: Sendable {
    /// From tokio (`LOCAL_QUEUE_CAPACITY = 256`) and Go (`runq [256]guintptr`).
    static let capacity: UInt32 = 256
    private static let mask = capacity - 1

    private let head = Atomic<UInt32>(0)
    private let tail = Atomic<UInt32>(0)
    private let slots: InlineArray<256, Atomic<UInt>> = InlineArray { _ in Atomic(0) }  // job pointers

    init() {
        precondition(slots.count == Int(RunQueue.capacity))
    }

    /// Jobs in the queue now (a snapshot; any thread).
    var count: Int {
        let head = head.load(ordering: .acquiring)
        let tail = tail.load(ordering: .acquiring)
        return Int(tail &- head)
    }

    var isEmpty: Bool { count == 0 }

    /// Pushes at the tail. Owner only. If the ring is full, moves half of it and `job` to `inject`.
    func push(_ job: UInt, overflowingInto inject: InjectQueue) {
        while true {
            let head = head.load(ordering: .acquiring)
            let tail = tail.load(ordering: .relaxed)  // only we write it
            if tail &- head < RunQueue.capacity {
                slots[Int(tail & RunQueue.mask)].store(job, ordering: .relaxed)
                self.tail.store(tail &+ 1, ordering: .releasing)
                return
            }
            if overflow(job, head: head, tail: tail, into: inject) { return }
            // A stealer took jobs meanwhile: there is room now.
        }
    }

    /// Moves the older half of a full ring plus `job` to the inject queue. Owner only.
    private func overflow(_ job: UInt, head: UInt32, tail: UInt32, into inject: InjectQueue) -> Bool {
        let half = (tail &- head) / 2
        var batch: [UInt] = []
        batch.reserveCapacity(Int(half) + 1)
        for i in 0..<half {
            batch.append(slots[Int((head &+ i) & RunQueue.mask)].load(ordering: .relaxed))
        }
        guard self.head.compareExchange(expected: head, desired: head &+ half, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        batch.append(job)
        inject.push(contentsOf: batch)
        return true
    }

    /// Pops from the head (FIFO). Owner only (stealers use `steal(into:)`).
    func pop() -> UInt? {
        while true {
            let head = head.load(ordering: .acquiring)
            let tail = tail.load(ordering: .relaxed)
            if tail == head { return nil }
            let job = slots[Int(head & RunQueue.mask)].load(ordering: .relaxed)
            if self.head.compareExchange(expected: head, desired: head &+ 1, ordering: .acquiringAndReleasing).exchanged {
                return job
            }
        }
    }

    /// Steals half of this queue's jobs into `destination` (the caller's own queue, which must be
    /// empty) and returns one of them to run now, or nil if there was nothing to take.
    func steal(into destination: RunQueue) -> UInt? {
        let destinationTail = destination.tail.load(ordering: .relaxed)
        precondition(destination.isEmpty, "steal into a non-empty queue")
        var taken: UInt32 = 0
        while true {
            let head = head.load(ordering: .acquiring)
            let tail = tail.load(ordering: .acquiring)
            let available = tail &- head
            taken = available - available / 2
            if taken == 0 { return nil }
            if taken > RunQueue.capacity / 2 { continue }  // inconsistent snapshot: retry
            for i in 0..<taken {
                let job = slots[Int((head &+ i) & RunQueue.mask)].load(ordering: .relaxed)
                destination.slots[Int((destinationTail &+ i) & RunQueue.mask)].store(job, ordering: .relaxed)
            }
            if self.head.compareExchange(expected: head, desired: head &+ taken, ordering: .acquiringAndReleasing).exchanged {
                break
            }
        }
        // Keep the last one to run now; publish the rest.
        let last = destination.slots[Int((destinationTail &+ taken &- 1) & RunQueue.mask)].load(ordering: .relaxed)
        if taken > 1 {
            destination.tail.store(destinationTail &+ taken &- 1, ordering: .releasing)
        }
        return last
    }

    /// Removes every job (shutdown, after the owner thread has exited).
    func drain() -> [UInt] {
        var jobs: [UInt] = []
        while let job = pop() { jobs.append(job) }
        return jobs
    }
}
