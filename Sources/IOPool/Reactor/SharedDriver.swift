import Synchronization

/// A `WorkStealingPool`'s I/O and timer driver: one shared epoll reactor and one timer heap, polled
/// by whichever worker parks with nothing to do (tokio's design since 2019: `TryLock<Driver>`).
///
/// - `tryLock()`/`unlock()`: at most one worker polls at a time; the others park on their condition.
/// - A worker that holds the driver and blocks in `epoll_pwait2` uses the earliest timer as the
///   timeout and publishes it in `pollDeadline` (under the timers lock); arming an earlier timer
///   wakes it (eventfd), so a new short sleep is never late because of a long poll.
/// - Readiness events resume waiting tasks on the polling worker (their jobs land in its local
///   queue, from where idle workers steal them).
///
/// Thread-safety: `timers` and `pollDeadline` under `timers`' lock, `held` atomic, the reactor is
/// a shared one (see `Reactor`). `poll` only by the holder.
final class SharedDriver: Sendable {
    let reactor: Reactor
    private struct TimerState {
        var timers = PendingSleeps()
        /// The deadline the holder is blocked until (UInt64.max: no timeout); 0 when nobody blocks.
        var pollDeadline: UInt64 = 0
        var stopped = false
    }
    private let timers = Locked(TimerState())
    private let held = Atomic<Bool>(false)
    /// Polls and I/O events, for metrics. Written by the holder only (`held` orders one holder's
    /// writes before the next one's), so single-writer bumps.
    let polls = RelaxedCounter()
    let events = RelaxedCounter()

    init() throws(IOError) {
        reactor = try Reactor(shared: true)
    }

    func tryLock() -> Bool {
        held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    func unlock() {
        held.store(false, ordering: .releasing)
    }

    /// Wakes the holder out of `epoll_pwait2`. Any thread.
    func wake() { reactor.wake() }

    /// Polls for I/O (blocking until an event, a wake-up or the next timer if `block`), then fires
    /// due timers. Holder only. Returns the number of I/O events.
    @discardableResult
    func poll(block: Bool) -> Int {
        let timeout: UInt64? = timers.withLock { state in
            guard block else { return 0 }
            let now = monotonicNanoseconds()
            let timeout = state.timers.timeout(now: now)
            state.pollDeadline = timeout.map { now &+ $0 } ?? UInt64.max
            return timeout
        }
        let result = reactor.poll(timeoutNanoseconds: timeout)
        polls.bump()
        events.bump(UInt64(result.events))
        let due = timers.withLock { state in
            state.pollDeadline = 0
            return state.timers.isEmpty ? [] : state.timers.takeDue(now: monotonicNanoseconds())
        }
        for continuation in due { continuation.resume() }
        return result.events
    }

    /// Suspends the calling task until `deadline` (CLOCK_MONOTONIC nanoseconds). Any thread.
    func sleep(untilNanoseconds deadline: UInt64) async throws {
        try Task.checkCancellation()
        guard deadline > monotonicNanoseconds() else { return }
        let id = timers.withLock { $0.timers.makeID() }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                enum Outcome { case armed(wake: Bool), cancelled, stopped }
                // The cancelled check is under the lock the handler also takes, so a cancellation
                // either finds the timer or is seen here.
                let outcome = timers.withLock { state -> Outcome in
                    if state.stopped || withUnsafeCurrentTask(body: { $0?.isCancelled ?? false }) {
                        state.timers.discard(id: id)
                        return state.stopped ? .stopped : .cancelled
                    }
                    state.timers.add(id: id, deadline: deadline, continuation)
                    return .armed(wake: deadline < state.pollDeadline)
                }
                switch outcome {
                case .armed(let wake): if wake { reactor.wake() }
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .stopped: continuation.resume(throwing: IOError.poolStopped("sleep"))
                }
            }
        } onCancel: {
            timers.withLock { $0.timers.take(id: id) }?.resume(throwing: CancellationError())
        }
    }

    /// Pending sleeps (cancelled ones leave at once).
    var pendingTimerCount: Int { timers.withLock { $0.timers.count } }

    /// Fails every waiting I/O operation and sleep (the pool stopped) and closes the descriptors.
    /// Called once, after every worker thread has exited.
    func stop() {
        reactor.failAll(.poolStopped)
        let pending = timers.withLock { state in
            state.stopped = true
            return state.timers.takeAll()
        }
        for continuation in pending { continuation.resume(throwing: IOError.poolStopped("sleep")) }
        reactor.closeDescriptors()
    }
}
