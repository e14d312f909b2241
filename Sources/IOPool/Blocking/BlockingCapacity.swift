import DequeModule

/// A budget of `blocking { }` sections that may run at once, with a first-come-first-served line of
/// tasks waiting for a unit. Every context has one: each ``WorkStealingPool`` (`maxBlocking`), each
/// ``IOThreadPool`` (`maxBlocking`), and code outside any pool (``OffPoolBlocking/maxBlocking``).
///
/// ## Design
///
/// - A released unit goes straight to the first waiter (it never returns to the pool while someone
///   waits), so waiters are served in order and capacity is never lost: a task that takes a unit and
///   ends its section without blocking (its call threw, or returned at once) releases it the same
///   way. tokio-threadpool's "use it or lose it" rule exists because its capacity could be granted
///   to a task that was then not polled into `blocking`; here the grant and the use are one `await`.
/// - A waiter takes its place in line when it calls `acquire()`, before its continuation exists;
///   the grant, the cancellation and the continuation's registration meet under the lock, whichever
///   comes first decides (`Waiter.granted` / `Waiter.cancelled`).
/// - Cancellation: a task cancelled before it holds a unit leaves the line and throws
///   `CancellationError`. A task granted a unit as it was cancelled gives the unit to the next waiter
///   before it throws, so the race loses no unit.
/// - The limit can change while sections run: a higher one admits waiters at once, a lower one takes
///   effect as running sections end.
final class BlockingCapacity: Sendable {
    /// A task in line. Its fields are guarded by the capacity's lock (hence `@unchecked Sendable`).
    private final class Waiter: @unchecked Sendable {
        var continuation: UnsafeContinuation<Bool, Never>?
        var granted = false
        var cancelled = false
    }

    private struct State {
        var limit: Int
        var running = 0
        var waiters = Deque<Waiter>()
    }
    private let state: Locked<State>
    /// Told when the line goes from empty to non-empty (logged outside the lock).
    private let events: PoolEvents

    init(limit: Int, events: PoolEvents = .discarding) {
        precondition(limit >= 1, "a blocking capacity needs at least one unit, got \(limit)")
        state = Locked(State(limit: limit))
        self.events = events
    }

    /// Most sections holding a unit at once.
    var limit: Int {
        get { state.withLock { $0.limit } }
        set {
            precondition(newValue >= 1, "a blocking capacity needs at least one unit, got \(newValue)")
            let admitted = state.withLock { state -> [UnsafeContinuation<Bool, Never>] in
                state.limit = newValue
                var admitted: [UnsafeContinuation<Bool, Never>] = []
                while state.running < state.limit, let waiter = state.waiters.popFirst() {
                    state.running += 1
                    if let continuation = grant(waiter) { admitted.append(continuation) }
                }
                return admitted
            }
            for continuation in admitted { continuation.resume(returning: true) }
        }
    }

    /// Takes a unit, waiting in line if none is free.
    /// - Throws: `CancellationError`, holding no unit, if the task is cancelled before it holds one
    ///   (already at the call, or while it waits).
    func acquire() async throws(CancellationError) {
        if Task.isCancelled { throw CancellationError() }
        let (waiter, exhausted): (Waiter?, (limit: Int, running: Int)?) = state.withLock { state in
            if state.running < state.limit, state.waiters.isEmpty {
                state.running += 1
                return (nil, nil)
            }
            let startsLine = state.waiters.isEmpty
            let waiter = Waiter()
            state.waiters.append(waiter)
            return (waiter, startsLine ? (state.limit, state.running) : nil)
        }
        guard let waiter else { return }
        if let exhausted { events.blockingBudgetExhausted(limit: exhausted.limit, running: exhausted.running) }
        let granted = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Bool, Never>) in
                let decided: Bool? = state.withLock { _ in
                    if waiter.granted { return true }
                    if waiter.cancelled { return false }
                    waiter.continuation = continuation
                    return nil
                }
                if let decided { continuation.resume(returning: decided) }
            }
        } onCancel: {
            leaveLine(waiter)
        }
        guard granted else { throw CancellationError() }
        if Task.isCancelled {
            // Granted as the task was cancelled: the section will not run, so the unit moves on.
            release()
            throw CancellationError()
        }
    }

    /// Returns a unit: to the first waiter if any (it stays counted as running), else to the pool.
    func release() {
        let next = state.withLock { state -> UnsafeContinuation<Bool, Never>? in
            // After the limit was lowered, units above it are retired instead of passed on.
            if state.running <= state.limit, let waiter = state.waiters.popFirst() {
                return grant(waiter)
            }
            state.running -= 1
            return nil
        }
        next?.resume(returning: true)
    }

    /// Sections holding a unit, and tasks waiting for one.
    var snapshot: (running: Int, waiting: Int) {
        state.withLock { ($0.running, $0.waiters.count) }
    }

    /// Marks a waiter (just taken out of line, counted as running) granted; returns the continuation
    /// to resume, or nil if the waiter has not registered one yet (it then sees `granted` itself).
    /// Lock held.
    private func grant(_ waiter: Waiter) -> UnsafeContinuation<Bool, Never>? {
        waiter.granted = true
        defer { waiter.continuation = nil }
        return waiter.continuation
    }

    /// Cancellation handler: takes the waiter out of line unless it was granted already.
    private func leaveLine(_ waiter: Waiter) {
        let continuation = state.withLock { state -> UnsafeContinuation<Bool, Never>? in
            guard !waiter.granted, !waiter.cancelled else { return nil }
            waiter.cancelled = true
            if let index = state.waiters.firstIndex(where: { $0 === waiter }) { state.waiters.remove(at: index) }
            defer { waiter.continuation = nil }
            return waiter.continuation
        }
        continuation?.resume(returning: false)
    }
}
