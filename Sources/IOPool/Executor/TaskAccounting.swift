import Synchronization

/// Counts and tracks the tasks spawned on a pool, for graceful and immediate shutdown.
///
/// Phases (`State.phase`), in order:
/// - `running`: `admit()` accepts.
/// - `draining` (`shutdownGracefully()`): still accepts, so that live tasks can spawn children
///   (tokio-io-pool's `shutdown_on_idle` does not stop spawns either); waits for `live == 0`.
/// - `cancelling` (`shutdown()`): every running task was cancelled; a task admitted now starts
///   cancelled, so it unwinds at its first cancellation check; waits for `live == 0`.
/// - `stopped`: entered under the lock at the moment `live` reaches 0 in `draining`/`cancelling`;
///   `admit()` throws from then on. So no admitted task can outlive the pool's threads.
///
/// A task costs three uncontended lock acquisitions: `admit` (in `spawn`), `started` (first job on
/// its thread: records the task so `shutdown()` can cancel it) and `finished`.
final class TaskAccounting: Sendable {
    /// A running task's handle, kept so that `shutdown()` can cancel it.
    /// `@unchecked Sendable`: `UnsafeCurrentTask.cancel()` is thread-safe, and the entry is removed
    /// (in `finished`, under the same lock `cancelAll` holds) before the task ends, so the handle
    /// never outlives its task.
    struct RunningTask: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    enum Phase { case running, draining, cancelling, stopped }

    private struct State {
        var phase = Phase.running
        var live = 0
        var nextID: UInt64 = 0
        var running: [UInt64: RunningTask] = [:]
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let poolName: String
    private let state = Locked(State())

    init(poolName: String) {
        self.poolName = poolName
    }

    /// Reserves a slot for a new task; throws once the pool has stopped.
    func admit() throws(IOPoolError) -> UInt64 {
        let id: UInt64? = state.withLock { state in
            guard state.phase != .stopped else { return nil }
            state.live += 1
            state.nextID &+= 1
            return state.nextID
        }
        guard let id else { throw .shutDown(pool: poolName) }
        return id
    }

    /// Called first thing inside the spawned task.
    func started(_ id: UInt64) {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            let cancelNow = state.withLock { state in
                state.running[id] = RunningTask(task: task)
                return state.phase == .cancelling
            }
            if cancelNow { task.cancel() }
        }
    }

    /// Called last thing inside the spawned task (in a `defer`).
    func finished(_ id: UInt64) {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.running[id] = nil
            state.live -= 1
            return takeWaitersIfIdle(&state)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Number of admitted tasks that have not finished.
    var liveCount: Int { state.withLock { $0.live } }

    /// Enters `draining` (unless already cancelling or stopped) and waits until no task is live.
    func drain() async {
        await waitUntilStopped { state in
            if state.phase == .running { state.phase = .draining }
        }
    }

    /// Enters `cancelling`, cancels every running task and waits until no task is live.
    func cancelAll() async {
        await waitUntilStopped { state in
            guard state.phase == .running || state.phase == .draining else { return }
            state.phase = .cancelling
            for running in state.running.values { running.task.cancel() }
        }
    }

    private func waitUntilStopped(_ transition: @Sendable (inout State) -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
                transition(&state)
                if state.phase == .stopped { return [continuation] }
                state.idleWaiters.append(continuation)
                return takeWaitersIfIdle(&state)
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    private func takeWaitersIfIdle(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        guard state.live == 0, state.phase == .draining || state.phase == .cancelling else { return [] }
        state.phase = .stopped
        defer { state.idleWaiters = [] }
        return state.idleWaiters
    }
}
