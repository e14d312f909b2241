import Glibc

/// Nanoseconds on CLOCK_MONOTONIC.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// The sleeps waiting for their deadline on one poller (an IOThread's loop, or a
/// `WorkStealingPool`'s `SharedDriver`): suspended continuations in a `TimerHeap`; the earliest
/// deadline becomes the poller's `epoll_pwait2` timeout (nanoseconds).
///
/// A sleep takes an ID first (`makeID`), so that its cancellation handler can name it, then
/// `add`s itself; an ID that is never added goes back with `discard`.
///
/// Loop-confined (owned by one IOThread), or guarded by a lock (a `SharedDriver`'s).
struct PendingSleeps {
    typealias ID = TimerHeap<UnsafeContinuation<Void, any Error>>.ID

    private var heap = TimerHeap<UnsafeContinuation<Void, any Error>>()

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    mutating func makeID() -> ID {
        heap.reserve()
    }

    mutating func add(id: ID, deadline: UInt64, _ continuation: UnsafeContinuation<Void, any Error>) {
        heap.insert(id, deadline: deadline, continuation)
    }

    /// Gives back an ID that was never added (the sleep ended before arming).
    mutating func discard(id: ID) {
        heap.release(id)
    }

    /// Removes the sleep `id` now and resumes it with `CancellationError`, if it is still pending.
    mutating func cancel(id: ID) {
        heap.remove(id)?.resume(throwing: CancellationError())
    }

    /// Nanoseconds until the earliest deadline (0 if due), or nil without timers.
    func timeout(now: UInt64) -> UInt64? {
        guard let deadline = heap.nextDeadline else { return nil }
        return deadline > now ? deadline - now : 0
    }

    /// Resumes every sleep whose deadline has passed, earliest first.
    mutating func fireDue(now: UInt64) {
        while let continuation = heap.popDue(now: now) {
            continuation.resume()
        }
    }

    /// Removes the sleep `id` if it is still pending and returns its continuation (the caller
    /// resumes it, outside any lock).
    mutating func take(id: ID) -> UnsafeContinuation<Void, any Error>? {
        heap.remove(id)
    }

    /// Removes the sleeps whose deadline has passed, earliest first, for the caller to resume.
    mutating func takeDue(now: UInt64) -> [UnsafeContinuation<Void, any Error>] {
        var due: [UnsafeContinuation<Void, any Error>] = []
        while let continuation = heap.popDue(now: now) { due.append(continuation) }
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
