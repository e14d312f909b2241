import Glibc
import SystemPackage

/// OS threads that run one piece of work after another, and wait up to `keepAlive` for the next
/// piece before they exit: tokio-threadpool's backup threads, and the threads that `blocking { }`
/// uses off-pool and for handing an IOThread's loop over.
///
/// ## Design
///
/// - `run(_:)` hands the work to an idle thread if there is one (the most recently idle: its stack
///   and caches are warm), and otherwise starts a thread.
/// - An idle thread waits on its own `Spare` condition, so a hand-off wakes exactly one thread.
/// - A thread whose keep-alive runs out leaves the idle list and detaches itself (nobody will join
///   it). Threads still registered when `stop()` runs are joined by `waitUntilStopped()`.
/// - `afterStart`/`beforeStop` run once per OS thread, on that thread, around all the work it does,
///   given the thread's 0-based number in start order (its name carries the 1-based one).
///
/// Thread-safety: all shared state is in `state` (a mutex); each spare's hand-off slot has its own
/// mutex. `@unchecked Sendable` for the immutable configuration stored beside them.
final class ThreadReserve: @unchecked Sendable {
    struct Configuration: Sendable {
        var namePrefix: String
        var stackSize: Int? = nil
        /// Nanoseconds an idle thread waits for work before it exits; nil waits forever.
        var keepAliveNanoseconds: UInt64?
        var afterStart: (@Sendable (Int) -> Void)? = nil
        var beforeStop: (@Sendable (Int) -> Void)? = nil
    }

    /// An idle thread's hand-off slot.
    private final class Spare: Sendable {
        struct Slot {
            var work: (@Sendable () -> Void)?
            var stop = false
        }
        let slot = ConditionLock(Slot())
    }

    private struct State {
        var idle: [Spare] = []
        var handles: [UInt64: PThread] = [:]
        var nextID: UInt64 = 0
        var alive = 0
        var stopping = false
    }

    let configuration: Configuration
    private let state = Locked(State())
    /// Set once stopping and no thread is alive.
    private let stopped = AsyncEvent()
    /// Test probe: called before each new thread starts, with the reserve's lock held; an errno
    /// makes that start fail as if `pthread_create` had returned it.
    let startProbe = Locked<(@Sendable () -> Errno?)?>(nil)

    init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Threads started and not yet exited.
    var aliveCount: Int { state.withLock { $0.alive } }
    /// Threads waiting for work.
    var idleCount: Int { state.withLock { $0.idle.count } }

    /// Runs `work` on an idle thread, or on a new one.
    /// - Throws: ``IOPoolError/threadStartFailed(name:errno:)`` if the OS refuses a thread, or
    ///   ``IOPoolError/shutDown(pool:)`` once `stop()` was called.
    func run(_ work: @escaping @Sendable () -> Void) throws(IOPoolError) {
        let result: Result<Spare?, IOPoolError> = state.withLock { state in
            if state.stopping { return .failure(.shutDown(pool: configuration.namePrefix)) }
            if let spare = state.idle.popLast() { return .success(spare) }
            // Started with the lock held, so the new thread's bookkeeping (below) cannot race ours.
            state.nextID += 1
            let id = state.nextID
            let name = PThread.truncatedName("\(configuration.namePrefix)\(id)")
            do throws(Errno) {
                if let refusal = startProbe.withLock({ $0 })?() { throw refusal }
                state.handles[id] = try PThread.start(name: name, stackSize: configuration.stackSize) { [self] in
                    threadMain(id: id, first: work)
                }
            } catch {
                return .failure(.threadStartFailed(name: name, errno: error))
            }
            state.alive += 1
            return .success(nil)
        }
        switch result {
        case .failure(let error):
            throw error
        case .success(let spare?):
            spare.slot.withLock { $0.work = work }
            spare.slot.signal()
        case .success(nil):
            break
        }
    }

    private func threadMain(id: UInt64, first: @escaping @Sendable () -> Void) {
        let number = Int(id - 1)
        configuration.afterStart?(number)
        let spare = Spare()
        var work: (@Sendable () -> Void)? = first
        while let next = work {
            next()
            work = nil
            let parked = state.withLock { state -> Bool in
                if state.stopping { return false }
                state.idle.append(spare)
                return true
            }
            guard parked else { break }
            let deadline = configuration.keepAliveNanoseconds.map(monotonicDeadline(afterNanoseconds:))
            var (received, stop, timedOut) = spare.slot.wait(until: { $0.work != nil || $0.stop }, deadline: deadline) { slot, timedOut in
                defer { slot.work = nil }
                return (slot.work, slot.stop, timedOut)
            }
            if timedOut {
                // Leave the idle list, unless a producer popped us already: then its work is coming.
                let left = state.withLock { state -> Bool in
                    guard let index = state.idle.firstIndex(where: { $0 === spare }) else { return false }
                    state.idle.remove(at: index)
                    if let handle = state.handles.removeValue(forKey: id) { pthread_detach(handle.handle) }
                    return true
                }
                if !left {
                    (received, stop) = spare.slot.wait(until: { $0.work != nil || $0.stop }) { slot, _ in
                        defer { slot.work = nil }
                        return (slot.work, slot.stop)
                    }
                }
            }
            if stop { break }
            work = received
        }
        configuration.beforeStop?(number)
        let lastAtStop = state.withLock { state -> Bool in
            state.alive -= 1
            return state.alive == 0 && state.stopping
        }
        if lastAtStop { stopped.set() }
    }

    /// Refuses new work and tells idle threads to exit; busy threads exit when their work returns.
    func stop() {
        let (idle, noneAlive) = state.withLock { state -> ([Spare], Bool) in
            state.stopping = true
            defer { state.idle = [] }
            return (state.idle, state.alive == 0)
        }
        if noneAlive { stopped.set() }
        for spare in idle {
            spare.slot.withLock { $0.stop = true }
            spare.slot.signal()
        }
    }

    /// After `stop()`: waits until every thread has exited, then joins them.
    func waitUntilStopped() async {
        precondition(state.withLock { $0.stopping }, "waitUntilStopped() needs stop() first")
        await stopped.wait()
        let handles = state.withLock { state in
            defer { state.handles = [:] }
            return Array(state.handles.values)
        }
        for handle in handles { handle.join() }
    }
}
