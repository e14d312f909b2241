import CIOPoolShims

/// The tasks started by `spawn` that are running now: each one's `TaskIOCancellation` scope, linked
/// into one of 1,024 independently locked lists chosen by the task's address. Others find there:
/// - a task's own I/O cancellation scope, for its waits (`TaskIOCancellation.forCurrentTask`, only
///   when the per-socket cache misses: once per task and socket direction);
/// - every running task of a pool and its `TaskAccounting`, for an immediate shutdown to cancel them.
///
/// Why intrusive lists and not a dictionary by address: a spawn pays for one insertion and one
/// removal, and a dictionary's were most of the registry's cost (hashing, the entry's references,
/// uniqueness checks and growth); linking a node is four pointer stores under the lock. The price
/// is a lookup that walks its list, which is short (1,024 lists: about ten nodes each with ten
/// thousand running tasks) and runs once per task and socket direction, not per wait.
///
/// A node lives in its list exactly while its task runs `TaskIOCancellation.run`, which holds the
/// scope, so the lists keep nodes unretained, and an address is never looked up after its task
/// ended and its memory went to another task.
enum SpawnedTasks {
    /// The head of one list; nodes link through `TaskIOCancellation.previous`/`next`, touched only
    /// under the list's lock.
    struct List {
        fileprivate var head: Unmanaged<TaskIOCancellation>? = nil
    }

    private static let listCount = 1024
    private static let lists = (0..<listCount).map { _ in Locked(List()) }

    @inline(__always)
    private static func list(_ address: UInt) -> Locked<List> {
        // Tasks are heap objects, 16-byte aligned and larger than 256 bytes: skip the bits that barely vary.
        lists[Int(truncatingIfNeeded: (address >> 8) ^ (address >> 18)) & (listCount - 1)]
    }

    /// The running task's address (a thread-local read), nil outside a task.
    @inline(__always)
    static func currentAddress() -> UInt? {
        let address = UInt(ciopool_current_task_address())
        return address == 0 ? nil : address
    }

    /// Records `scope`, of the calling task (admitted by the scope's accounting). If the pool is
    /// already cancelling its tasks, the task cancels itself: `cancelAll` may have scanned this
    /// list before the node was in it (both sides are sequentially consistent on the phase, and the
    /// list's lock orders the scan against the insertion).
    static func enter(_ scope: TaskIOCancellation) {
        let node = Unmanaged.passUnretained(scope)
        list(scope.taskAddress).withLock { list in
            scope.previous = nil
            scope.next = list.head
            list.head?.takeUnretainedValue().previous = node
            list.head = node
        }
        if scope.accounting.phase == .cancelling { scope.cancelTask() }
    }

    static func leave(_ scope: TaskIOCancellation) {
        list(scope.taskAddress).withLock { list in
            if let previous = scope.previous {
                previous.takeUnretainedValue().next = scope.next
            } else {
                list.head = scope.next
            }
            scope.next?.takeUnretainedValue().previous = scope.previous
            scope.previous = nil
            scope.next = nil
        }
    }

    /// The scope of the task at `address`, if it was started by `spawn` (a child task has none).
    /// Only for the running task's own address: a node lives while its task runs.
    ///
    /// Not inlined: the cold path of every wait (a `ScopeCache` miss), and its loop inlined into
    /// the waits made the shared driver's `waitForEdge` too large to be inlined into its callers
    /// (a task frame more per message; counts in BENCHMARKS.md, "Spawn at the floor").
    @inline(never)
    static func scope(ofTaskAt address: UInt) -> TaskIOCancellation? {
        list(address).withLock { list in
            var node = list.head
            while let current = node?.takeUnretainedValue() {
                if current.taskAddress == address { return current }
                node = current.next
            }
            return nil
        }
    }

    /// Cancels every running task of `accounting` (an immediate shutdown; rare, so a full scan).
    ///
    /// The tasks are retained under each list's lock and cancelled after it: `cancel()` runs the
    /// task's cancellation handlers, which are user code and may spawn (taking a list's lock). A
    /// task that starts after its list was scanned cancels itself in `enter`.
    static func cancelAll(of accounting: TaskAccounting) {
        for list in lists {
            let tasks = list.withLock { list -> [Task<Never, Never>] in
                var tasks: [Task<Never, Never>] = []
                var node = list.head
                while let current = node?.takeUnretainedValue() {
                    if current.accounting === accounting { tasks.append(current.retainedTask()) }
                    node = current.next
                }
                return tasks
            }
            for task in tasks { task.cancel() }
        }
    }
}
