/// The tasks started by `spawn` that are running now, by task address, in 64 independently
/// locked shards (so that workers starting, ending and waiting in different tasks rarely meet on
/// a lock). Each entry holds what others need to find from the task:
/// - its I/O cancellation scope, for its own waits (`TaskIOCancellation.forCurrentTask`), in place
///   of a task-local (`TaskLocal.withValue` costs four `swift_task_switch` per task);
/// - its handle and its pool's `TaskAccounting`, for an immediate shutdown to cancel it.
///
/// An entry lives exactly while its task runs `TaskIOCancellation.run`, so an address is never
/// looked up after its task ended and its memory went to another task, and the handle never
/// outlives the task.
enum SpawnedTasks {
    /// `@unchecked Sendable`: `UnsafeCurrentTask.cancel()` is thread-safe, and the entry (and
    /// with it the handle) is removed before the task ends.
    struct Entry: @unchecked Sendable {
        let task: UnsafeCurrentTask
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

    @inline(__always)
    private static func currentTask() -> (UnsafeCurrentTask, UInt)? {
        withUnsafeCurrentTask { task in task.map { ($0, unsafeBitCast($0, to: UInt.self)) } }
    }

    /// Records the calling task (a task admitted by `accounting`). If the pool is already
    /// cancelling its tasks, the task cancels itself: `cancelAll` may have scanned this shard
    /// before the entry was in it (both sides are sequentially consistent on the phase, and the
    /// shard's lock orders the scan against the insert).
    static func enter(scope: TaskIOCancellation, accounting: TaskAccounting) -> Key? {
        guard let (task, address) = currentTask() else { return nil }
        shard(address).withLock { $0[address] = Entry(task: task, scope: scope, accounting: accounting) }
        if accounting.phase == .cancelling { task.cancel() }
        return Key(address: address)
    }

    static func leave(_ key: Key?) {
        guard let key else { return }
        shard(key.address).withLock { _ = $0.removeValue(forKey: key.address) }
    }

    /// The scope of the running task, if it was started by `spawn` (a child task has none).
    static func scopeOfCurrentTask() -> TaskIOCancellation? {
        guard let (_, address) = currentTask() else { return nil }
        return shard(address).withLock { $0[address]?.scope }
    }

    /// Cancels every running task of `accounting` (an immediate shutdown; rare, so a full scan).
    static func cancelAll(of accounting: TaskAccounting) {
        for shard in shards {
            // Under the lock: `leave` removes an entry under it before its task can end, so a
            // handle cancelled here is alive. (Cancellation handlers run inside `cancel()`; a
            // scope's only enqueues a job or takes a registration's lock, never a shard's.)
            shard.withLock { entries in
                for entry in entries.values where entry.accounting === accounting { entry.task.cancel() }
            }
        }
    }
}
