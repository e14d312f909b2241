import DequeModule
import Synchronization

/// One direction of a socket (its reads, or its writes, or a listener's accepts), held by one
/// operation at a time; the others wait their turn in FIFO order.
///
/// Why: a socket's reactor registration has one waiter slot per direction, and a write that
/// writes everything may take many syscalls. Tasks that share a stream (an actor broadcasting to
/// its clients, whose reentrancy starts a second write while the first waits for a slow reader)
/// must neither trap nor see their writes interleave. The gate serializes whole operations: the
/// holder runs its syscalls and readiness waits alone, and hands the turn directly to the oldest
/// queued task when it is done (no barging, so every waiter gets its turn).
///
/// Cost: taking a free gate is one compare-exchange, giving it back with nobody queued is another;
/// no lock and no allocation. Only contention takes the lock (allocated on the first contention,
/// then kept) and queues a continuation.
///
/// `state`: `free`, `held` (nobody queued), or `queued` (held, with waiters in the queue). It
/// leaves `queued` only with the lock held, so a releaser that finds `queued` knows that the
/// queue, under the lock, tells the truth.
///
/// Cancellation: a queued task that is cancelled leaves the queue with `CancellationError`; the
/// others keep their places. A task that was handed the turn as it was cancelled keeps the turn
/// (its operation then sees the cancellation itself) and gives it back as usual, so no turn is lost.
struct DirectionGate: ~Copyable, Sendable {
    private static let free = 0
    private static let held = 1
    private static let queued = 2

    private let state = Atomic<Int>(DirectionGate.free)
    private let lazyQueue = Atomic<Unmanaged<Locked<WaitQueue>>?>(nil)

    private struct Waiter {
        let id: UInt64
        let continuation: UnsafeContinuation<Void, any Error>
        let operation: StaticString
    }

    private struct WaitQueue {
        var waiters: Deque<Waiter> = []
        var nextID: UInt64 = 0
    }

    init() {}

    deinit {
        lazyQueue.load(ordering: .acquiring)?.release()
    }

    /// Takes the turn if nobody holds it. One compare-exchange.
    @inline(__always)
    func tryEnter() -> Bool {
        state.compareExchange(expected: DirectionGate.free, desired: DirectionGate.held, ordering: .acquiring).exchanged
    }

    /// Takes the turn, waiting behind the tasks already queued. Throws `CancellationError` if the
    /// task is cancelled while queued, or the socket's close error if it is closed meanwhile
    /// (`failQueued`). On return the caller holds the turn and must `leave()`.
    nonisolated(nonsending)
    func enter(_ operation: StaticString) async throws {
        if tryEnter() { return }
        try await enterQueued(operation)
    }

    /// Gives the turn back: to the oldest queued task if there is one.
    @inline(__always)
    func leave() {
        if state.compareExchange(expected: DirectionGate.held, desired: DirectionGate.free, ordering: .releasing).exchanged {
            return
        }
        handOff()
    }

    /// Fails every queued task with `IOError.closed` (the socket was closed): they need not wait
    /// for the holder, whose own wait the close ends.
    func failQueued() {
        guard let queue = lazyQueue.load(ordering: .acquiring)?.takeUnretainedValue() else { return }
        let failed = queue.withLock { queue -> Deque<Waiter> in
            let failed = queue.waiters
            queue.waiters.removeAll()
            if !failed.isEmpty { state.store(DirectionGate.held, ordering: .releasing) }
            return failed
        }
        for waiter in failed {
            waiter.continuation.resume(throwing: IOError.closed("\(waiter.operation)"))
        }
    }

    /// How many tasks wait for the turn (a probe for tests).
    var queuedCount: Int {
        lazyQueue.load(ordering: .acquiring)?.takeUnretainedValue().withLock { $0.waiters.count } ?? 0
    }

    // MARK: Contention

    private func waitQueue() -> Locked<WaitQueue> {
        if let existing = lazyQueue.load(ordering: .acquiring) { return existing.takeUnretainedValue() }
        let created = Unmanaged.passRetained(Locked(WaitQueue()))
        let (exchanged, winner) = lazyQueue.compareExchange(expected: nil, desired: created, ordering: .acquiringAndReleasing)
        if exchanged { return created.takeUnretainedValue() }
        created.release()
        return winner!.takeUnretainedValue()
    }

    nonisolated(nonsending)
    private func enterQueued(_ operation: StaticString) async throws {
        let queue = waitQueue()
        let id = queue.withLock { queue -> UInt64 in
            queue.nextID &+= 1
            return queue.nextID
        }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                enum Outcome { case entered, queued, cancelled }
                let outcome = queue.withLock { queue -> Outcome in
                    // Checked under the lock: a cancellation handler that runs later finds the waiter.
                    if withUnsafeCurrentTask(body: { $0?.isCancelled ?? false }) { return .cancelled }
                    var current = state.load(ordering: .acquiring)
                    while true {
                        if current == DirectionGate.queued { break }
                        let desired = current == DirectionGate.free ? DirectionGate.held : DirectionGate.queued
                        let (exchanged, original) = state.compareExchange(
                            expected: current, desired: desired, ordering: .acquiringAndReleasing)
                        if exchanged {
                            if current == DirectionGate.free { return .entered }  // the holder left meanwhile
                            break
                        }
                        current = original
                    }
                    queue.waiters.append(Waiter(id: id, continuation: continuation, operation: operation))
                    return .queued
                }
                switch outcome {
                case .entered: continuation.resume()
                case .queued: break
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let cancelled = queue.withLock { queue -> Waiter? in
                guard let index = queue.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = queue.waiters.remove(at: index)
                // The holder still holds the turn; with nobody left queued its `leave` is the fast one.
                if queue.waiters.isEmpty { state.store(DirectionGate.held, ordering: .releasing) }
                return waiter
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }

    /// `leave()` found `queued`: pass the turn to the oldest waiter (the state stays held), or,
    /// if cancellations emptied the queue meanwhile, free the gate.
    private func handOff() {
        let queue = waitQueue()
        let next = queue.withLock { queue -> Waiter? in
            guard let next = queue.waiters.popFirst() else {
                state.store(DirectionGate.free, ordering: .releasing)
                return nil
            }
            if queue.waiters.isEmpty { state.store(DirectionGate.held, ordering: .releasing) }
            return next
        }
        next?.continuation.resume()
    }
}
