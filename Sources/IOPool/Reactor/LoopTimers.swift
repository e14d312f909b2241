import Glibc
import HeapModule

/// Nanoseconds on CLOCK_MONOTONIC.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

extension Duration {
    /// The duration in whole nanoseconds (negative durations count as zero).
    var wholeNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}

/// The loop's internal timers: a min-heap of deadlines driving `epoll_wait`'s timeout.
///
/// Loop-confined (owned by one IOThread). This is the minimal timer the I/O layer needs today (the
/// accept back-off); the public time API (sleep, timeouts, a Clock) extends it. Cancelled sleeps
/// are removed from `pending` at once; their heap entry is skipped when it comes due.
struct LoopTimers {
    private struct Entry: Comparable {
        let deadline: UInt64
        let id: UInt64
        static func < (a: Entry, b: Entry) -> Bool { (a.deadline, a.id) < (b.deadline, b.id) }
    }

    private var heap = Heap<Entry>()
    private var pending: [UInt64: UnsafeContinuation<Void, any Error>] = [:]
    private var nextID: UInt64 = 0

    var isEmpty: Bool { pending.isEmpty }

    mutating func makeID() -> UInt64 {
        nextID &+= 1
        return nextID
    }

    mutating func add(id: UInt64, deadline: UInt64, _ continuation: UnsafeContinuation<Void, any Error>) {
        heap.insert(Entry(deadline: deadline, id: id))
        pending[id] = continuation
    }

    /// Resumes the sleep `id` with `CancellationError` if it is still pending.
    mutating func cancel(id: UInt64) {
        pending.removeValue(forKey: id)?.resume(throwing: CancellationError())
    }

    /// `epoll_wait` timeout in ms until the earliest live deadline (rounded up), or -1.
    mutating func timeoutMilliseconds(now: UInt64) -> CInt {
        while let first = heap.min, pending[first.id] == nil { _ = heap.removeMin() }
        guard let first = heap.min else { return -1 }
        if first.deadline <= now { return 0 }
        let ms = (first.deadline - now + 999_999) / 1_000_000
        return CInt(min(ms, UInt64(CInt.max)))
    }

    /// Resumes every sleep whose deadline has passed.
    mutating func fireDue(now: UInt64) {
        while let first = heap.min, first.deadline <= now {
            _ = heap.removeMin()
            pending.removeValue(forKey: first.id)?.resume()
        }
    }

    /// Fails every pending sleep (the loop is shutting down).
    mutating func failAll(_ error: any Error) {
        let all = pending
        pending.removeAll()
        heap = Heap()
        for continuation in all.values { continuation.resume(throwing: error) }
    }
}
