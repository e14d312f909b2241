/// The tasks started by `spawn` that are running now, by task address, in 64 independently
/// locked shards (so that workers starting, ending and waiting in different tasks rarely meet on
/// a lock). Each entry holds what others need to find from the task:
/// - its I/O cancellation scope, for its own waits (`TaskIOCancellation.forCurrentTask`), in place
///   of a task-local (`TaskLocal.withValue` costs four `swift_task_switch` per task);
/// - its handle and its pool's `TaskAccounting`, for an immediate shutdown to cancel it.
///
/// An entry lives exactly while its task runs `TaskIOCancellation.run`, so an address is never
/// looked up after its task ended and its memory went to another task.
enum SpawnedTasks {
    struct Entry: Sendable {
        /// A strong handle to the task, so that `cancelAll` can cancel it outside the shard's lock
        /// even if the task ends meanwhile (cancelling a finished task does nothing).
        let task: Task<Never, Never>
        let scope: TaskIOCancellation
        let accounting: TaskAccounting
    }

    /// A running task's key, from `enter`, for `leave`.
    struct Key {
        fileprivate let address: UInt
    }

    private static let shardCount = 64
    private static let shards = (0..<shardCount).map { _ in Locked([UInt: Entry]()) }

    @inline(__always)
    private static func shard(_ address: UInt) -> Locked<[UInt: Entry]> {
        // Tasks are heap objects, 16-byte aligned and larger than 64 bytes: skip the bits that barely vary.
        shards[Int(truncatingIfNeeded: (address >> 6) ^ (address >> 12)) & (shardCount - 1)]
    }

    /// The running task's address (a thread-local read), nil outside a task.
    @inline(__always)
    static func currentAddress() -> UInt? {
        withUnsafeCurrentTask { task in task.map { unsafeBitCast($0, to: UInt.self) } }
    }

    /// A `Task` handle to the running task, which, unlike the `UnsafeCurrentTask`, may be kept
    /// after `withUnsafeCurrentTask` returns. Both are one strong reference to the same runtime
    /// task object (the standard library's `_task: Builtin.NativeObject`), and `Task.cancel()`
    /// ignores the generic parameters; the bit cast copies the reference, retaining the task.
    @inline(__always)
    private static func currentTaskHandle() -> (Task<Never, Never>, UInt)? {
        withUnsafeCurrentTask { task in
            task.map { (unsafeBitCast($0, to: Task<Never, Never>.self), unsafeBitCast($0, to: UInt.self)) }
        }
    }

    /// Records the calling task (a task admitted by `accounting`). If the pool is already
    /// cancelling its tasks, the task cancels itself: `cancelAll` may have scanned this shard
    /// before the entry was in it (both sides are sequentially consistent on the phase, and the
    /// shard's lock orders the scan against the insert).
    static func enter(scope: TaskIOCancellation, accounting: TaskAccounting) -> Key? {
        guard let (task, address) = currentTaskHandle() else { return nil }
        shard(address).withLock { $0[address] = Entry(task: task, scope: scope, accounting: accounting) }
        if accounting.phase == .cancelling { task.cancel() }
        return Key(address: address)
    }

    static func leave(_ key: Key?) {
        guard let key else { return }
        shard(key.address).withLock { _ = $0.removeValue(forKey: key.address) }
    }

    /// The scope of the task at `address`, if it was started by `spawn` (a child task has none).
    /// Only for the running task's own address: an entry lives while its task runs.
    static func scope(ofTaskAt address: UInt) -> TaskIOCancellation? {
        shard(address).withLock { $0[address]?.scope }
    }

    /// Cancels every running task of `accounting` (an immediate shutdown; rare, so a full scan).
    ///
    /// The handles are collected under each shard's lock and cancelled after it: `cancel()` runs
    /// the task's cancellation handlers, which are user code and may spawn (taking a shard's lock).
    /// A task that starts after its shard was scanned cancels itself in `enter`.
    static func cancelAll(of accounting: TaskAccounting) {
        for shard in shards {
            let tasks = shard.withLock { entries in
                entries.values.filter { $0.accounting === accounting }.map(\.task)
            }
            for task in tasks { task.cancel() }
        }
    }
}
