import IOPool
import Synchronization

/// Where a scheduler benchmark runs: one of our pools, or a comparison runtime the pools are
/// measured against: the same WorkStealingPool without `spawn`'s accounting, Swift's default
/// global executor, or the floor (`FloorExecutor`: the thinnest executor, to tell the pools' cost
/// from the runtime's). A pool needs no adapter (it is a `TaskPool`); the comparison runtimes are
/// what this type adds.
enum BenchRuntime: Sendable {
    /// IOThreadPool or WorkStealingPool, through `TaskPool.spawn` (remote) and the free `spawn`
    /// (local).
    case pool(any TaskPool)
    /// The same pool, with plain `Task(executorPreference:)` instead of `spawn`: the scheduler
    /// alone, without the per-task shutdown accounting and cancellation scope that `spawn` adds.
    case workStealingPreference(WorkStealingPool)
    case global
    /// `FloorExecutor` through `Task(executorPreference:)`, remote and local spawns alike.
    case floor(FloorExecutor)

    enum Kind: String, CaseIterable, Sendable {
        /// The floor with the pools' thread count: the one the "÷ floor" ratios use.
        case floor = "floor"
        /// The floor on one thread: the pure per-task cost, no cross-thread wake-ups.
        case floorSingle = "floor 1 thread"
        case io = "IOThreadPool"
        case stealing = "WorkStealingPool"
        case stealingPreference = "WSP Task(pref:)"
        case global = "global executor"
    }

    static func make(_ kind: Kind, threads: Int) throws -> BenchRuntime {
        switch kind {
        case .io: return .pool(try IOThreadPool(configuration: .init(threadCount: threads, threadNamePrefix: "bench-io-")))
        case .stealing: return .pool(try WorkStealingPool(configuration: .init(threadCount: threads, threadNamePrefix: "bench-ws-")))
        case .stealingPreference:
            return .workStealingPreference(try WorkStealingPool(configuration: .init(threadCount: threads, threadNamePrefix: "bench-wsp-")))
        case .global: return .global
        case .floor: return .floor(FloorExecutor(threadCount: threads))
        case .floorSingle: return .floor(FloorExecutor(threadCount: 1, namePrefix: "bench-floor1-"))
        }
    }

    /// Spawns from outside the runtime (tokio's "remote" spawn).
    @discardableResult
    func spawnRemote(_ operation: sending @escaping () async -> Void) -> Task<Void, Never> {
        switch self {
        case .pool(let pool): return try! pool.spawn(operation)
        case .workStealingPreference(let pool): return Task(executorPreference: pool, operation: operation)
        case .floor(let floor): return Task(executorPreference: floor, operation: operation)
        case .global: return Task.detached(operation: operation)
        }
    }

    /// Spawns from a task of the runtime (tokio's local spawn): our free `spawn` keeps the child on
    /// the caller's thread or worker; on the global executor a plain `Task`.
    @discardableResult
    func spawnLocal(_ operation: sending @escaping () async -> Void) -> Task<Void, Never> {
        switch self {
        case .pool: return spawn(operation)
        case .workStealingPreference(let pool): return Task(executorPreference: pool, operation: operation)
        case .floor(let floor): return Task(executorPreference: floor, operation: operation)
        case .global: return Task(operation: operation)
        }
    }

    /// Shuts the runtime down gracefully: a pool waits for its tasks (the floor stops its threads;
    /// the global executor has nothing to shut down).
    func shutdownGracefully() async {
        switch self {
        case .pool(let pool): await pool.shutdownGracefully()
        case .workStealingPreference(let pool): await pool.shutdownGracefully()
        case .floor(let floor): floor.shutdown()
        case .global: break
        }
    }
}

/// A one-shot channel: one `send`, one `receive` (tokio's `oneshot`), for ping-pong.
final class Oneshot<Value: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Value, Never>)
        case sent(Value)
        case done
    }
    private let state = Mutex(State.empty)

    func send(_ value: Value) {
        let waiter: CheckedContinuation<Value, Never>? = state.withLock { state in
            switch state {
            case .empty:
                state = .sent(value)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .sent, .done:
                preconditionFailure("Oneshot sent twice")
            }
        }
        waiter?.resume(returning: value)
    }

    func receive() async -> Value {
        await withCheckedContinuation { continuation in
            let ready: Value? = state.withLock { state in
                switch state {
                case .empty:
                    state = .waiting(continuation)
                    return nil
                case .sent(let value):
                    state = .done
                    return value
                case .waiting, .done:
                    preconditionFailure("Oneshot received twice")
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Counts down from `count`; `wait()` returns once it reaches zero (tokio benches' atomic
/// countdown plus a channel).
final class Countdown: Sendable {
    private let state: Mutex<(remaining: Int, waiter: CheckedContinuation<Void, Never>?)>

    init(_ count: Int) {
        state = Mutex((count, nil))
    }

    func decrement() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            state.remaining -= 1
            guard state.remaining == 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.remaining == 0 { return true }
                state.waiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }
}
