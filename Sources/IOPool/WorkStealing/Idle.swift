import Synchronization

/// Which workers sleep, which search for work, and whom to wake: tokio's `idle.rs`.
///
/// ## Worker states
///
/// - **running**: holds its core, runs jobs. Counted in `unparked`.
/// - **searching**: running, with an empty local queue, stealing from siblings and the inject queue.
///   Counted in `searching` (and `unparked`). At most half the workers search at once
///   (`transitionToSearching`), so idle workers do not all hammer the same queues.
/// - **parked**: in `sleepers`, waiting on its parker (one of them on the shared driver's epoll).
/// - **no thread**: a parked worker whose thread was never started (threads start lazily: the first
///   notification of such a worker starts one).
///
/// ## Wake-up policy
///
/// New work wakes at most one sleeper, and only if nobody is searching already (`workerToNotify`):
/// a searcher will find the work, and when it does, it leaves the searching state and, if it was
/// the last searcher, wakes one more (`transitionFromSearching`), so wake-ups ramp up one at a time
/// instead of a thundering herd. A woken worker starts out searching.
///
/// The atomic `state` packs `searching` (low 16 bits) and `unparked` (the rest) so that the common
/// "should anyone be woken?" check is one load; `sleepers` changes only under the lock, and the
/// checks that decide on it are repeated under the lock.
final class Idle: Sendable {
    private static let searchingMask: UInt = 0xFFFF
    private static let unparkedOne: UInt = 1 << 16

    private let workerCount: Int
    private let state: Atomic<UInt>
    private struct Sleepers {
        var indices: [Int]
        var started: [Bool]
    }
    private let sleepers: Locked<Sleepers>

    init(workerCount: Int) {
        precondition(workerCount <= Int(Idle.searchingMask), "at most \(Idle.searchingMask) workers")
        self.workerCount = workerCount
        state = Atomic(0)  // nobody runs yet: every worker is a sleeper without a thread
        sleepers = Locked(Sleepers(indices: Array((0..<workerCount).reversed()), started: Array(repeating: false, count: workerCount)))
    }

    private static func searching(_ state: UInt) -> Int { Int(state & searchingMask) }
    private static func unparked(_ state: UInt) -> Int { Int(state >> 16) }

    var searchingCount: Int { Idle.searching(state.load(ordering: .sequentiallyConsistent)) }
    var unparkedCount: Int { Idle.unparked(state.load(ordering: .sequentiallyConsistent)) }

    private func shouldWake() -> Bool {
        // A read-modify-write, not a load (tokio's `fetch_add(0, SeqCst)`): it orders the caller's
        // earlier push (a plain release store of a ring's tail) before this read, so a searcher that
        // parks and re-checks the queues (`transitionToParked`) and this notifier cannot both miss
        // each other.
        let state = state.wrappingAdd(0, ordering: .sequentiallyConsistent).oldValue
        return Idle.searching(state) == 0 && Idle.unparked(state) < workerCount
    }

    /// The worker to wake for new work, if any should be woken, and whether its thread must be
    /// started. The woken worker counts as unparked and searching from here on.
    func workerToNotify() -> (index: Int, needsThread: Bool)? {
        guard shouldWake() else { return nil }
        return sleepers.withLock { sleepers in
            guard shouldWake(), let index = sleepers.indices.popLast() else { return nil }
            state.wrappingAdd(Idle.unparkedOne | 1, ordering: .sequentiallyConsistent)
            let needsThread = !sleepers.started[index]
            sleepers.started[index] = true
            return (index, needsThread)
        }
    }

    /// `workerToNotify()` chose `index` but its thread could not start: it goes back to sleep, at
    /// the far end of the line, so that the next notification wakes a worker that has a thread
    /// (appended last, it would be chosen again and again while a parked worker sleeps on).
    func threadStartFailed(_ index: Int) {
        sleepers.withLock { sleepers in
            state.wrappingSubtract(Idle.unparkedOne | 1, ordering: .sequentiallyConsistent)
            sleepers.started[index] = false
            sleepers.indices.insert(index, at: 0)
        }
    }

    /// A running worker parks. Returns whether it was the last searcher (it must then re-check the
    /// queues for work that arrived while nobody was being woken).
    func transitionToParked(_ index: Int, isSearching: Bool) -> Bool {
        sleepers.withLock { sleepers in
            let decrement = Idle.unparkedOne | (isSearching ? 1 : 0)
            let previous = state.wrappingSubtract(decrement, ordering: .sequentiallyConsistent).oldValue
            sleepers.indices.append(index)
            return isSearching && Idle.searching(previous) == 1
        }
    }

    /// A worker woke up without being notified (I/O events, a spurious wake-up) and has work:
    /// removes it from the sleepers if it is still there. Returns whether it was (then it was not
    /// notified, so it does not start out searching).
    func unparkWorker(_ index: Int) -> Bool {
        sleepers.withLock { sleepers in
            guard let position = sleepers.indices.firstIndex(of: index) else { return false }
            sleepers.indices.remove(at: position)
            state.wrappingAdd(Idle.unparkedOne, ordering: .sequentiallyConsistent)
            return true
        }
    }

    /// Whether `index` is still parked (not notified).
    func isParked(_ index: Int) -> Bool {
        sleepers.withLock { $0.indices.contains(index) }
    }

    /// Enters the searching state, unless half the workers search already.
    func transitionToSearching() -> Bool {
        let state = state.load(ordering: .sequentiallyConsistent)
        if 2 * Idle.searching(state) >= workerCount { return false }
        self.state.wrappingAdd(1, ordering: .sequentiallyConsistent)
        return true
    }

    /// Leaves the searching state; true if this was the last searcher (it then wakes another worker,
    /// since the work it found may not be all there is).
    func transitionFromSearching() -> Bool {
        let previous = state.wrappingSubtract(1, ordering: .sequentiallyConsistent).oldValue
        return Idle.searching(previous) == 1
    }
}
