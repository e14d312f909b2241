// Task groups whose children spread over an IOThreadPool's threads.
//
// Why: a child of a task group inherits its parent's task executor preference (SE-0417), so in a
// task of an IOThreadPool every child stays on the parent's thread. That is the point of the pool
// for one connection's work, and the wrong shape for an accept loop, where each connection should
// go to its own thread. These wrappers are Swift's discarding task groups whose `addTask` passes
// `executorPreference: pool.next()`: the children are still structured (the group waits for all
// of them, errors and cancellation propagate as in a discarding task group), and each one is
// placed round-robin, staying on its thread for life (its own children stay with it).
//
// A WorkStealingPool needs no such method: its children go to the parent worker's queue, from
// which idle workers steal them, so they spread by themselves.

extension IOThreadPool {
    /// Runs `body` with a discarding task group whose ``SpreadingDiscardingTaskGroup/addTask(priority:operation:)``
    /// places each child on the pool's next thread (round-robin, as ``spawn(_:)->Task<Success,Never>``),
    /// and returns once `body` and every child have finished.
    ///
    /// In a plain task group inside a pool task, all children stay on the parent's thread; use this
    /// to spread them, e.g. one child per accepted connection:
    ///
    /// ```swift
    /// try await pool.withThrowingSpreadingDiscardingTaskGroup { group in
    ///     for try await connection in listener.connections {  // ends when the listener is closed
    ///         group.addTask { try? await handle(connection) }
    ///     }
    /// }
    /// ```
    ///
    /// The children are children of the calling task, not spawned tasks of the pool: they count
    /// toward the pool's graceful shutdown, and its immediate shutdown cancels them, only through
    /// their parent, when the caller is itself a task of this pool. Their I/O and sleeps use the
    /// thread they run on. A child added after the pool shut down runs on the default pool's thread
    /// that took over the stopped loop.
    ///
    /// Cancellation: as `withDiscardingTaskGroup`, cancelling the calling task cancels every child.
    nonisolated(nonsending)
    public func withSpreadingDiscardingTaskGroup<GroupResult>(
        body: (inout SpreadingDiscardingTaskGroup) async -> GroupResult
    ) async -> GroupResult {
        await withDiscardingTaskGroup { group in
            var spreading = SpreadingDiscardingTaskGroup(group: group, pool: self)
            return await body(&spreading)
        }
    }

    /// The throwing form of ``withSpreadingDiscardingTaskGroup(body:)``, as
    /// `withThrowingDiscardingTaskGroup`: the first error thrown by `body` or by a child cancels the
    /// group (every other child) and is rethrown once all children have ended.
    ///
    /// An accept loop whose children must not end the server should not throw from them (handle
    /// the connection's errors inside the child, as `try?` above).
    nonisolated(nonsending)
    public func withThrowingSpreadingDiscardingTaskGroup<GroupResult>(
        body: (inout ThrowingSpreadingDiscardingTaskGroup) async throws -> GroupResult
    ) async throws -> GroupResult {
        try await withThrowingDiscardingTaskGroup { group in
            var spreading = ThrowingSpreadingDiscardingTaskGroup(group: group, pool: self)
            return try await body(&spreading)
        }
    }
}

/// A discarding task group whose children are placed round-robin on an ``IOThreadPool``'s threads;
/// see ``IOThreadPool/withSpreadingDiscardingTaskGroup(body:)``. Like `DiscardingTaskGroup`, it
/// must not escape the closure it is given to.
public struct SpreadingDiscardingTaskGroup {
    // A copy of the group handle Swift passes to `withDiscardingTaskGroup`'s body: it refers to the
    // same group, and lives only inside that body, like the original.
    private var group: DiscardingTaskGroup
    /// The pool whose threads the children go to.
    public let pool: IOThreadPool

    init(group: DiscardingTaskGroup, pool: IOThreadPool) {
        self.group = group
        self.pool = pool
    }

    /// Adds a child that runs `operation` on the pool's next thread, for its whole life.
    public mutating func addTask(priority: TaskPriority? = nil, operation: sending @escaping () async -> Void) {
        group.addTask(executorPreference: pool.next(), priority: priority, operation: operation)
    }

    /// Adds a child that runs `operation` on `thread` (any IOThread), for its whole life.
    public mutating func addTask(on thread: IOThread, priority: TaskPriority? = nil, operation: sending @escaping () async -> Void) {
        group.addTask(executorPreference: thread, priority: priority, operation: operation)
    }

    /// Cancels every child (and those added later), as `DiscardingTaskGroup.cancelAll()`.
    public func cancelAll() { group.cancelAll() }

    /// Whether the group is cancelled.
    public var isCancelled: Bool { group.isCancelled }

    /// Whether no child is running.
    public var isEmpty: Bool { group.isEmpty }
}

/// The throwing form of ``SpreadingDiscardingTaskGroup``; see
/// ``IOThreadPool/withThrowingSpreadingDiscardingTaskGroup(body:)``.
public struct ThrowingSpreadingDiscardingTaskGroup {
    private var group: ThrowingDiscardingTaskGroup<any Error>
    /// The pool whose threads the children go to.
    public let pool: IOThreadPool

    init(group: ThrowingDiscardingTaskGroup<any Error>, pool: IOThreadPool) {
        self.group = group
        self.pool = pool
    }

    /// Adds a child that runs `operation` on the pool's next thread, for its whole life. Its error,
    /// if any, cancels the group and is rethrown by the group.
    public mutating func addTask(priority: TaskPriority? = nil, operation: sending @escaping () async throws -> Void) {
        group.addTask(executorPreference: pool.next(), priority: priority, operation: operation)
    }

    /// Adds a child that runs `operation` on `thread` (any IOThread), for its whole life.
    public mutating func addTask(on thread: IOThread, priority: TaskPriority? = nil, operation: sending @escaping () async throws -> Void) {
        group.addTask(executorPreference: thread, priority: priority, operation: operation)
    }

    /// Cancels every child (and those added later), as `ThrowingDiscardingTaskGroup.cancelAll()`.
    public func cancelAll() { group.cancelAll() }

    /// Whether the group is cancelled.
    public var isCancelled: Bool { group.isCancelled }

    /// Whether no child is running.
    public var isEmpty: Bool { group.isEmpty }
}
