import Glibc

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

/// A loop's timers: suspended sleeps keyed by id in a `TimerHeap`; the earliest deadline becomes
/// the loop's `epoll_pwait2` timeout (nanoseconds).
///
/// Loop-confined (owned by one IOThread), or guarded by a lock (a `SharedDriver`'s).
struct LoopTimers {
    private var heap = TimerHeap<UnsafeContinuation<Void, any Error>>()
    private var nextID: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    mutating func makeID() -> UInt64 {
        nextID &+= 1
        return nextID
    }

    mutating func add(id: UInt64, deadline: UInt64, _ continuation: UnsafeContinuation<Void, any Error>) {
        heap.insert(id: id, deadline: deadline, continuation)
    }

    /// Removes the sleep `id` now and resumes it with `CancellationError`, if it is still pending.
    mutating func cancel(id: UInt64) {
        heap.remove(id: id)?.resume(throwing: CancellationError())
    }

    /// Nanoseconds until the earliest deadline (0 if due), or nil without timers.
    func timeout(now: UInt64) -> UInt64? {
        guard let deadline = heap.nextDeadline else { return nil }
        return deadline > now ? deadline - now : 0
    }

    /// Resumes every sleep whose deadline has passed, earliest first.
    mutating func fireDue(now: UInt64) {
        while let (_, continuation) = heap.popDue(now: now) {
            continuation.resume()
        }
    }

    /// Removes the sleep `id` if it is still pending and returns its continuation (the caller
    /// resumes it, outside any lock).
    mutating func take(id: UInt64) -> UnsafeContinuation<Void, any Error>? {
        heap.remove(id: id)
    }

    /// Removes the sleeps whose deadline has passed, earliest first, for the caller to resume.
    mutating func takeDue(now: UInt64) -> [UnsafeContinuation<Void, any Error>] {
        var due: [UnsafeContinuation<Void, any Error>] = []
        while let (_, continuation) = heap.popDue(now: now) { due.append(continuation) }
        return due
    }

    /// Removes every pending sleep.
    mutating func takeAll() -> [UnsafeContinuation<Void, any Error>] {
        heap.removeAll()
    }

    /// Fails every pending sleep (the loop is shutting down).
    mutating func failAll(_ error: any Error) {
        for continuation in heap.removeAll() { continuation.resume(throwing: error) }
    }
}
