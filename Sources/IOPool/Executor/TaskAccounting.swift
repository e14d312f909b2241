import Synchronization

/// Counts the tasks spawned on a pool, for graceful and immediate shutdown.
///
/// Phases, in order:
/// - `running`: `admit()` accepts.
/// - `draining` (`shutdownGracefully()`): still accepts, so that live tasks can spawn children
///   (tokio-io-pool's `shutdown_on_idle` does not stop spawns either); waits for `live == 0`.
/// - `cancelling` (`shutdown()`): every running task was cancelled; a task admitted now starts
///   cancelled, so it unwinds at its first cancellation check; waits for `live == 0`.
/// - `stopped`: entered at the moment `live` reaches 0 in `draining`/`cancelling`; `admit()`
///   throws from then on. So no admitted task can outlive the pool's threads.
///
/// The phase and the live count share one atomic word, so that `admit` and `finished` (twice per
/// spawn, from every worker at once) are a compare-exchange and a subtraction, not a shared lock.
/// The running tasks themselves (what `shutdown()` cancels) are recorded in `SpawnedTasks`,
/// in locked intrusive lists, as their I/O cancellation scopes.
final class TaskAccounting: Sendable {
    enum Phase: UInt64 { case running = 0, draining = 1, cancelling = 2, stopped = 3 }

    /// `phase << 62 | live`.
    private let word = Atomic<UInt64>(0)
    private static let phaseShift: UInt64 = 62
    private static let liveMask: UInt64 = (1 << 62) - 1

    /// Shutdown callers waiting for `stopped`.
    private let waiters = Locked<[CheckedContinuation<Void, Never>]>([])

    let poolName: String

    init(poolName: String) {
        self.poolName = poolName
    }

    private static func phase(_ word: UInt64) -> Phase { Phase(rawValue: word >> phaseShift)! }
    private static func live(_ word: UInt64) -> UInt64 { word & liveMask }

    var phase: Phase { Self.phase(word.load(ordering: .sequentiallyConsistent)) }

    /// Counts a new task in; throws once the pool has stopped.
    func admit() throws(IOPoolError) {
        var current = word.load(ordering: .relaxed)
        while true {
            guard Self.phase(current) != .stopped else { throw .shutDown(pool: poolName) }
            let (exchanged, original) = word.compareExchange(
                expected: current, desired: current + 1, ordering: .sequentiallyConsistent)
            if exchanged { return }
            current = original
        }
    }

    /// Called last thing inside an admitted task (in a `defer`).
    func finished() {
        let now = word.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue
        if Self.live(now) == 0 { stopIfIdle() }
    }

    /// Number of admitted tasks that have not finished.
    var liveCount: Int { Int(Self.live(word.load(ordering: .relaxed))) }

    /// Enters `draining` (unless already cancelling or stopped) and waits until no task is live.
    func drain() async {
        await waitUntilStopped { _ = self.advance(to: .draining, from: [.running]) }
    }

    /// Enters `cancelling`, cancels every running task and waits until no task is live.
    func cancelAll() async {
        await waitUntilStopped {
            if self.advance(to: .cancelling, from: [.running, .draining]) {
                SpawnedTasks.cancelAll(of: self)
            }
        }
    }

    /// Moves the phase forward; true if this call made the move.
    private func advance(to phase: Phase, from allowed: Set<Phase>) -> Bool {
        var current = word.load(ordering: .relaxed)
        while allowed.contains(Self.phase(current)) {
            let desired = phase.rawValue << Self.phaseShift | Self.live(current)
            let (exchanged, original) = word.compareExchange(
                expected: current, desired: desired, ordering: .sequentiallyConsistent)
            if exchanged { return true }
            current = original
        }
        return false
    }

    private func waitUntilStopped(_ transition: () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // Registered before the transition, under the lock `stopIfIdle` takes its waiters
            // with: either it takes this one, or this sees `stopped` and resumes at once.
            let stoppedAlready = waiters.withLock { list -> Bool in
                if phase == .stopped { return true }
                list.append(continuation)
                return false
            }
            if stoppedAlready {
                continuation.resume()
                return
            }
            transition()
            stopIfIdle()
        }
    }

    /// `draining`/`cancelling` with no live task becomes `stopped`; the caller that makes the
    /// move resumes every waiter.
    private func stopIfIdle() {
        var current = word.load(ordering: .sequentiallyConsistent)
        while Self.live(current) == 0, Self.phase(current) == .draining || Self.phase(current) == .cancelling {
            let (exchanged, original) = word.compareExchange(
                expected: current, desired: Phase.stopped.rawValue << Self.phaseShift, ordering: .sequentiallyConsistent)
            if exchanged {
                for waiter in waiters.withLock({ list in defer { list = [] }; return list }) { waiter.resume() }
                return
            }
            current = original
        }
    }
}
