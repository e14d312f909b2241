// `spawn`: how tasks are placed on IOThreads. `Task { }` does not inherit a task executor
// preference (SE-0417), so every spawn passes the preference explicitly; `async let` and task-group
// children inherit it on their own.

extension TaskAccounting {
    /// Starts `operation`, already admitted (`admit()`), as a task that prefers `executor` (an
    /// IOThread, a WorkStealingPool): counted for graceful shutdown, recorded in `SpawnedTasks`
    /// for immediate shutdown, with one `TaskIOCancellation` scope for all its I/O waits. Every
    /// `spawn` of both pools goes through here. (Admission is a separate step so that a caller can
    /// fall back to another pool without having sent `operation` away.)
    func startTask<Success: Sendable>(
        on executor: any TaskExecutor, _ operation: sending @escaping () async -> Success
    ) -> Task<Success, Never> {
        let scope = TaskIOCancellation(accounting: self)
        return Task(executorPreference: executor) { await scope.run(operation) }
    }

    /// The throwing form of `startTask(on:_:)`.
    func startTask<Success: Sendable>(
        on executor: any TaskExecutor, _ operation: sending @escaping () async throws -> Success
    ) -> Task<Success, any Error> {
        let scope = TaskIOCancellation(accounting: self)
        return Task(executorPreference: executor) { try await scope.run(operation) }
    }

    /// `admit()`, then `startTask(on:_:)`: a pool's own `spawn`, which throws once it has stopped.
    func admitAndStart<Success: Sendable>(
        on executor: any TaskExecutor, _ operation: sending @escaping () async -> Success
    ) throws(IOPoolError) -> Task<Success, Never> {
        try admit()
        return startTask(on: executor, operation)
    }

    /// The throwing form of `admitAndStart(on:_:)`.
    func admitAndStart<Success: Sendable>(
        on executor: any TaskExecutor, _ operation: sending @escaping () async throws -> Success
    ) throws(IOPoolError) -> Task<Success, any Error> {
        try admit()
        return startTask(on: executor, operation)
    }
}

extension IOThread {
    /// Starts `operation` as a new task that runs on this thread for its whole life.
    ///
    /// The task counts toward the pool's graceful shutdown and is cancelled by its immediate one.
    /// - Throws: ``IOPoolError/shutDown(pool:)`` once the pool has shut down.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async -> Success
    ) throws(IOPoolError) -> Task<Success, Never> {
        try accounting.admitAndStart(on: self, operation)
    }

    /// Starts a throwing `operation` as a new task that runs on this thread for its whole life.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async throws -> Success
    ) throws(IOPoolError) -> Task<Success, any Error> {
        try accounting.admitAndStart(on: self, operation)
    }
}

/// Starts `operation` as a new task where the caller runs: on the caller's ``IOThread`` (so children
/// stay on their parent's thread), on the caller's ``WorkStealingPool`` (onto the calling worker's
/// local queue), and otherwise on the next thread of ``IOThreadPool/default``.
///
/// If the caller's pool has already shut down, the task goes to the default pool: a spawn is
/// never lost.
@discardableResult
public func spawn<Success: Sendable>(_ operation: sending @escaping () async -> Success) -> Task<Success, Never> {
    switch ExecutionContext.current {
    case .ioThread(let thread) where (try? thread.accounting.admit()) != nil:
        return thread.accounting.startTask(on: thread, operation)
    case .workStealingPool(let pool) where (try? pool.accounting.admit()) != nil:
        return pool.accounting.startTask(on: pool, operation)
    default:
        break
    }
    let thread = IOThreadPool.default.next()
    // The default pool never shuts down, so admission cannot fail.
    try! thread.accounting.admit()
    return thread.accounting.startTask(on: thread, operation)
}

/// The throwing form of ``spawn(_:)-(()->Success)``.
@discardableResult
public func spawn<Success: Sendable>(
    _ operation: sending @escaping () async throws -> Success
) -> Task<Success, any Error> {
    switch ExecutionContext.current {
    case .ioThread(let thread) where (try? thread.accounting.admit()) != nil:
        return thread.accounting.startTask(on: thread, operation)
    case .workStealingPool(let pool) where (try? pool.accounting.admit()) != nil:
        return pool.accounting.startTask(on: pool, operation)
    default:
        break
    }
    let thread = IOThreadPool.default.next()
    try! thread.accounting.admit()
    return thread.accounting.startTask(on: thread, operation)
}
