/// A one-shot event that tasks await: `wait()` returns once `set()` has run (at once if it already
/// has). The shutdown sequences use it: a loop that has exited, a pool that has stopped, workers
/// released, reserve threads gone.
final class AsyncEvent: Sendable {
    private let state = Locked<(isSet: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Sets the event and resumes every waiter. Idempotent; any thread.
    func set() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.isSet else { return [] }
            state.isSet = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Suspends until the event is set.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isSet = state.withLock { state -> Bool in
                if state.isSet { return true }
                state.waiters.append(continuation)
                return false
            }
            if isSet { continuation.resume() }
        }
    }
}

/// Runs an async operation once: the first caller of `run` runs it, later and concurrent callers
/// wait until it has finished (how both pools make their shutdowns idempotent).
final class AsyncOnce: Sendable {
    private let started = Locked(false)
    private let finished = AsyncEvent()

    func run(_ operation: () async -> Void) async {
        let first = started.withLock { started -> Bool in
            defer { started = true }
            return !started
        }
        if first {
            await operation()
            finished.set()
        } else {
            await finished.wait()
        }
    }
}
