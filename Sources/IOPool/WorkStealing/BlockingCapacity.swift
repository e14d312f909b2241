import DequeModule

/// How many `blocking { }` sections of a ``WorkStealingPool`` may run at once (`maxBlocking`), with
/// a first-come-first-served queue of tasks waiting for a unit.
///
/// A released unit goes straight to the first waiter (it never returns to the pool while someone
/// waits), so waiters are served in order and capacity is never lost: a task that takes a unit and
/// ends its section without blocking (its call threw, or returned at once) releases it the same way.
/// tokio-threadpool's "use it or lose it" rule exists because its capacity could be granted to a
/// task that was then not polled into `blocking`; here the grant and the use are one `await`.
final class BlockingCapacity: Sendable {
    private struct State {
        var available: Int
        var running = 0
        var waiters = Deque<UnsafeContinuation<Void, Never>>()
    }
    private let state: Locked<State>

    init(limit: Int) {
        state = Locked(State(available: limit))
    }

    /// Takes a unit, waiting in line if none is free.
    func acquire() async {
        let granted = state.withLock { state -> Bool in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.available -= 1
            state.running += 1
            return true
        }
        if granted { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let grantedNow = state.withLock { state -> Bool in
                if state.available > 0, state.waiters.isEmpty {
                    state.available -= 1
                    state.running += 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if grantedNow { continuation.resume() }
        }
    }

    /// Returns a unit: to the first waiter if any (it stays counted as running), else to the pool.
    func release() {
        let next = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if let next = state.waiters.popFirst() { return next }
            state.available += 1
            state.running -= 1
            return nil
        }
        next?.resume()
    }

    /// Sections holding a unit, and tasks waiting for one.
    var snapshot: (running: Int, waiting: Int) {
        state.withLock { ($0.running, $0.waiters.count) }
    }
}
