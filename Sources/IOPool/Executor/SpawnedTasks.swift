import CIOPoolShims

/// The tasks started by `spawn` that are running now: each one's `TaskIOCancellation` scope by task
/// address, in 64 independently locked shards (so that workers starting, ending and waiting in
/// different tasks rarely meet on a lock). Others find there, from the task:
/// - its I/O cancellation scope, for its own waits (`TaskIOCancellation.forCurrentTask`, behind a
///   per-socket cache), in place of a task-local (`TaskLocal.withValue` costs four
///   `swift_task_switch` per task);
/// - its handle and its pool's `TaskAccounting` (held by the scope), for an immediate shutdown to
///   cancel it.
///
/// An entry lives exactly while its task runs `TaskIOCancellation.run`, which holds the scope, so
/// the table keeps it unretained, and an address is never looked up after its task ended and its
/// memory went to another task.
///
/// Per task this is two shard locks, one insert and one removal (callgrind over `bench scheduler
/// --only chained_spawn`: the dictionary with SipHash, entries of three references and the lock's
/// exclusivity checks were about 1,000 instructions per spawned task; see BENCHMARKS.md).
enum SpawnedTasks {
    /// A task's address as a dictionary key, hashed by one multiplication instead of SipHash:
    /// addresses are not chosen by an adversary, and a spawn pays for two hashes.
    struct Address: Hashable {
        let bits: UInt

        func hash(into hasher: inout Hasher) { hasher.combine(bits) }

        // The standard library's hook for a type's raw hash (what `Dictionary` calls); the
        // multiplier's high bits are folded down because a dictionary indexes by the low bits.
        func _rawHashValue(seed: Int) -> Int {
            let mixed = (bits ^ UInt(bitPattern: seed)) &* 0x9E37_79B9_7F4A_7C15
            return Int(bitPattern: mixed ^ (mixed >> 32))
        }
    }

    private static let shardCount = 64
    private static let shards = (0..<shardCount).map { _ in Locked([Address: Unmanaged<TaskIOCancellation>]()) }

    @inline(__always)
    private static func shard(_ address: UInt) -> Locked<[Address: Unmanaged<TaskIOCancellation>]> {
        // Tasks are heap objects, 16-byte aligned and larger than 64 bytes: skip the bits that barely vary.
        shards[Int(truncatingIfNeeded: (address >> 6) ^ (address >> 12)) & (shardCount - 1)]
    }

    /// The running task's address (a thread-local read), nil outside a task.
    @inline(__always)
    static func currentAddress() -> UInt? {
        let address = UInt(ciopool_current_task_address())
        return address == 0 ? nil : address
    }

    /// A `Task` handle to the running task and its address. The handle, unlike the
    /// `UnsafeCurrentTask`, may be kept after `withUnsafeCurrentTask` returns. Both are one strong
    /// reference to the same runtime task object (the standard library's `_task:
    /// Builtin.NativeObject`), and `Task.cancel()` ignores the generic parameters; the bit cast
    /// copies the reference, retaining the task.
    @inline(__always)
    static func currentTaskHandle() -> (Task<Never, Never>, UInt)? {
        withUnsafeCurrentTask { task in
            task.map { (unsafeBitCast($0, to: Task<Never, Never>.self), unsafeBitCast($0, to: UInt.self)) }
        }
    }

    /// Records `scope`, of the task at `address` (the calling task, admitted by the scope's
    /// accounting). If the pool is already cancelling its tasks, the task cancels itself:
    /// `cancelAll` may have scanned this shard before the entry was in it (both sides are
    /// sequentially consistent on the phase, and the shard's lock orders the scan against the insert).
    static func enter(_ scope: TaskIOCancellation, at address: UInt) {
        shard(address).withLock { $0[Address(bits: address)] = Unmanaged.passUnretained(scope) }
        if scope.accounting.phase == .cancelling { scope.task.cancel() }
    }

    static func leave(at address: UInt) {
        shard(address).withLock { _ = $0.removeValue(forKey: Address(bits: address)) }
    }

    /// The scope of the task at `address`, if it was started by `spawn` (a child task has none).
    /// Only for the running task's own address: an entry lives while its task runs.
    static func scope(ofTaskAt address: UInt) -> TaskIOCancellation? {
        shard(address).withLock { $0[Address(bits: address)]?.takeUnretainedValue() }
    }

    /// Cancels every running task of `accounting` (an immediate shutdown; rare, so a full scan).
    ///
    /// The handles are collected under each shard's lock and cancelled after it: `cancel()` runs
    /// the task's cancellation handlers, which are user code and may spawn (taking a shard's lock).
    /// A task that starts after its shard was scanned cancels itself in `enter`.
    static func cancelAll(of accounting: TaskAccounting) {
        for shard in shards {
            let tasks = shard.withLock { entries in
                entries.values.map { $0.takeUnretainedValue() }.filter { $0.accounting === accounting }.map(\.task)
            }
            for task in tasks { task.cancel() }
        }
    }
}
