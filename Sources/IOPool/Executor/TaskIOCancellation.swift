import CIOPoolShims
import Synchronization

/// One cancellation handler per spawned task, instead of one per I/O wait.
///
/// Why: `withTaskCancellationHandler` around every wait adds and removes a task status record
/// (each under the task's status lock) and costs two runtime executor checks (each also taking that
/// lock for a task with an executor preference). On the echo benchmark that was a third of the
/// Swift runtime's share of the server's CPU. Tasks started by `spawn` install this handler once;
/// their waits then publish "I wait on registration R" with two atomic exchanges. Waits of other
/// tasks (a plain `Task`, or a child task, which inherits the task-local but is not the task that
/// owns it) still use `withTaskCancellationHandler`.
///
/// Protocol (all accesses sequentially consistent, so it is Dekker's: at least one side sees the other):
///
/// | waiter (the task, on R's loop)                       | canceller (any thread, once)                 |
/// |------------------------------------------------------|----------------------------------------------|
/// | 1. `waitingOn.exchange(retained R)`                   | a. `cancelled.store(true)`                    |
/// | 2. if `cancelled`: take R back, throw Cancellation   | b. `waitingOn.exchange(nil)`; if it got R:    |
/// | 3. install the waiter (tagged with this scope), suspend |    enqueue on R's loop "cancel the waiters   |
/// | 4. resumed: `waitingOn.exchange(nil)`, release R if got |    tagged with this scope", release R there |
///
/// If b. took R, the job it enqueued runs on R's loop after the job doing 1-3 (the waiter runs on
/// that loop), so it finds the installed waiter. For a registration with a `WorkStealingPool`'s
/// shared driver there is no loop: b. removes the waiter under the registration's lock, and step 3
/// checks `cancelled` under the same lock, so one of them sees the other. Whoever takes R from `waitingOn` releases it, so
/// R is retained exactly while someone may still use it.
///
/// `@unchecked Sendable`: the atomics are the shared state; `taskAddress` is written once by the
/// task before the scope is published (under a `SpawnedTasks` lock), and the list links only
/// under that lock.
final class TaskIOCancellation: @unchecked Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// A retained `Registration` (its address), or 0.
    private let waitingOn = Atomic<UInt>(0)
    /// True while its task runs `run` (see `ScopeCache`).
    private let running = Atomic<Bool>(true)
    /// The task's address: its key in `SpawnedTasks` and in `ScopeCache`. Set by `run`.
    private(set) var taskAddress: UInt = 0
    /// The pool's accounting that admitted the task (`SpawnedTasks.cancelAll` matches on it).
    let accounting: TaskAccounting
    /// Links of `SpawnedTasks`' intrusive list, touched only under that list's lock.
    var previous: Unmanaged<TaskIOCancellation>? = nil
    var next: Unmanaged<TaskIOCancellation>? = nil

    init(accounting: TaskAccounting) {
        self.accounting = accounting
    }

    /// A strong handle to the task. Only while the task runs `run` (while its node is in
    /// `SpawnedTasks`, under that list's lock): the address is then a live task object, which the
    /// handle retains, so the caller may cancel it after the lock even if the task ends meanwhile
    /// (cancelling a finished task does nothing). A task is a native heap object; `Task` is one
    /// strong reference to it (the standard library's `_task: Builtin.NativeObject`), and
    /// `cancel()` ignores the generic parameters.
    func retainedTask() -> Task<Never, Never> {
        let object = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: taskAddress)!).takeUnretainedValue()
        return unsafeBitCast(object, to: Task<Never, Never>.self)
    }

    /// Cancels the calling task, which is this scope's.
    func cancelTask() {
        withUnsafeCurrentTask { $0?.cancel() }
    }

    /// The scope of the running task, if it was started by `spawn` (a child task has none): the
    /// scope in `cached` (that of the last task that waited in the caller's place) if it is the
    /// running task's, else the one in `SpawnedTasks`, with the cache entry to store instead.
    ///
    /// (Value in, value out rather than `inout`: an `inout` access to a class's stored property
    /// across calls costs a dynamic exclusivity check, two runtime calls, on every wait.)
    @inline(__always)
    static func forCurrentTask(cached: ScopeCache) -> (scope: TaskIOCancellation?, refreshed: ScopeCache?) {
        let address = SpawnedTasks.currentAddress()
        if address == cached.task, let scope = cached.scope, scope.running.load(ordering: .acquiring) {
            return (scope, nil)
        }
        let scope = address.flatMap(SpawnedTasks.scope(ofTaskAt:))
        return (scope, ScopeCache(task: address, scope: scope))
    }

    fileprivate func cancel() {
        cancelled.store(true, ordering: .sequentiallyConsistent)
        let address = waitingOn.exchange(0, ordering: .sequentiallyConsistent)
        guard address != 0 else { return }
        let registration = Unmanaged<Registration>.fromOpaque(UnsafeRawPointer(bitPattern: address)!)
        registration.takeUnretainedValue().cancelWaitersFromAnyThread(scope: ObjectIdentifier(self), releasing: registration)
    }

    /// Whether `cancel()` has run. A shared registration reads it under its lock before installing
    /// a waiter (see `Registration`).
    var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }

    /// Steps 1 and 2: publishes the wait and returns true, or returns false (publishing nothing)
    /// if the task is already cancelled: the caller throws `CancellationError`.
    /// Must be called on `registration`'s loop, right before installing the waiter.
    ///
    /// (A `Bool`, not `throws(CancellationError)`: `CancellationError` is a resilient type, so a
    /// typed-throws call in an async caller reserves its error slot with `swift_task_alloc` at the
    /// caller's entry — two task allocations per echoed message in `performHoldingTurn`, about 240
    /// instructions with their `swift_task_getCurrent` calls, measured with callgrind.)
    func beginWait(on registration: Registration) -> Bool {
        let retained = UInt(bitPattern: Unmanaged.passRetained(registration).toOpaque())
        let previous = waitingOn.exchange(retained, ordering: .sequentiallyConsistent)
        assert(previous == 0, "a task waits on one registration at a time")
        if cancelled.load(ordering: .sequentiallyConsistent) {
            endWait()
            return false
        }
        return true
    }

    /// Step 4 (also the way out of step 2).
    func endWait() {
        let address = waitingOn.exchange(0, ordering: .sequentiallyConsistent)
        if address != 0 {
            Unmanaged<Registration>.fromOpaque(UnsafeRawPointer(bitPattern: address)!).release()
        }
    }
}

/// The scope of the last task that waited in one place (a registration's direction), so that a
/// task's repeated waits on one socket skip the `SpawnedTasks` lookup (a lock and a list walk).
///
/// Why a hit is the current task's scope: a hit needs the cached scope to be running, so its task
/// is alive at the cached address, and the current task is alive at the same address: two live
/// tasks never share an address, so they are one task. A scope stops running before its task ends
/// (before the task's memory can go to a new task at the same address), and the cache holds the
/// scope strongly, so a stale entry is always seen as stale.
///
/// Not synchronized: each place is used by one operation at a time (the socket's direction gate
/// orders them, also across threads).
struct ScopeCache {
    fileprivate var task: UInt? = nil
    fileprivate var scope: TaskIOCancellation? = nil
}

extension TaskIOCancellation {
    /// Runs `operation`, the body of the spawned task calling this, with this scope for its I/O
    /// waits: records the scope, adds its cancellation handler, runs the operation, and undoes
    /// both and counts the task out (`TaskAccounting.finished`) before it returns.
    ///
    /// Why it looks like this: every `swift_task_switch` in a task with an executor preference
    /// takes the task's status-record lock to read the preference, and every async function
    /// between the task's entry and `operation` is a task frame. `nonisolated(nonsending)`: no
    /// switch on entry (a `@concurrent` function makes one). The handler record is added and
    /// removed directly (`ciopool_task_add_cancellation_handler`): `withTaskCancellationHandler`
    /// takes a throwing operation, so a non-throwing one went through reabstraction thunks (task
    /// frames) and the handler through a closure. Not generic over the error type: converting a
    /// non-throwing async closure to `throws(Never)` is a thunk too, hence two forms. The scope is
    /// found by the task's waits through `SpawnedTasks`, not a task-local (`TaskLocal.withValue`
    /// costs four `swift_task_switch` per task, and a task-local is copied into every unstructured
    /// task created under it). Measured step by step in BENCHMARKS.md ("Spawn at the floor").
    @inline(__always)
    nonisolated(nonsending) func run<Success>(_ operation: () async -> Success) async -> Success {
        let record = begin()
        defer { end(record) }
        return await operation()
    }

    /// The throwing form of `run(_:)`.
    @inline(__always)
    nonisolated(nonsending) func run<Success>(_ operation: () async throws -> Success) async throws -> Success {
        let record = begin()
        defer { end(record) }
        return try await operation()
    }

    /// Publishes the scope of the calling task and adds its cancellation handler; returns the
    /// handler's record, which `end` removes in the same task.
    private func begin() -> UnsafeMutableRawPointer {
        taskAddress = UInt(ciopool_current_task_address())
        SpawnedTasks.enter(self)
        return ciopool_task_add_cancellation_handler(Unmanaged.passUnretained(self).toOpaque())
    }

    private func end(_ record: UnsafeMutableRawPointer) {
        ciopool_task_remove_cancellation_handler(record)
        running.store(false, ordering: .releasing)
        SpawnedTasks.leave(self)
        accounting.finished()
    }
}

/// The runtime's call when a spawned task is cancelled (through the record added by
/// `TaskIOCancellation.run`): `scope` is that task's `TaskIOCancellation`, unretained, alive while the
/// record is (the task's closure context holds it).
@_cdecl("ciopool_task_io_cancellation_fire")
func taskIOCancellationFire(_ scope: UnsafeMutableRawPointer) {
    Unmanaged<TaskIOCancellation>.fromOpaque(scope).takeUnretainedValue().cancel()
}
