// `spawn`: how tasks are placed on IOThreads. `Task { }` does not inherit a task executor
// preference (SE-0417), so every spawn passes the preference explicitly; `async let` and task-group
// children inherit it on their own.

extension IOThread {
    /// Starts `operation` as a new task that runs on this thread for its whole life.
    ///
    /// The task counts toward the pool's graceful shutdown and is cancelled by its immediate one.
    /// - Throws: ``IOPoolError/shutDown(pool:)`` once the pool has shut down.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async -> Success
    ) throws(IOPoolError) -> Task<Success, Never> {
        let id = try accounting.admit()
        return makeTask(id: id, operation)
    }

    /// Starts a throwing `operation` as a new task that runs on this thread for its whole life.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async throws -> Success
    ) throws(IOPoolError) -> Task<Success, any Error> {
        let id = try accounting.admit()
        return makeTask(id: id, operation)
    }

    func makeTask<Success: Sendable>(id: UInt64, _ operation: sending @escaping () async -> Success) -> Task<Success, Never> {
        Task(executorPreference: self) { [accounting] in
            accounting.started(id)
            defer { accounting.finished(id) }
            return await TaskIOCancellation.run(operation)
        }
    }

    func makeTask<Success: Sendable>(
        id: UInt64, _ operation: sending @escaping () async throws -> Success
    ) -> Task<Success, any Error> {
        Task(executorPreference: self) { [accounting] in
            accounting.started(id)
            defer { accounting.finished(id) }
            return try await TaskIOCancellation.run(operation)
        }
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
    if let thread = IOThread.current, let id = try? thread.accounting.admit() {
        return thread.makeTask(id: id, operation)
    }
    if let pool = WorkStealingPool.current, let id = try? pool.accounting.admit() {
        return pool.makeTask(id: id, operation)
    }
    let thread = IOThreadPool.default.next()
    // The default pool never shuts down, so admission cannot fail.
    let id = try! thread.accounting.admit()
    return thread.makeTask(id: id, operation)
}

/// The throwing form of ``spawn(_:)-(()->Success)``.
@discardableResult
public func spawn<Success: Sendable>(
    _ operation: sending @escaping () async throws -> Success
) -> Task<Success, any Error> {
    if let thread = IOThread.current, let id = try? thread.accounting.admit() {
        return thread.makeTask(id: id, operation)
    }
    if let pool = WorkStealingPool.current, let id = try? pool.accounting.admit() {
        return pool.makeTask(id: id, operation)
    }
    let thread = IOThreadPool.default.next()
    let id = try! thread.accounting.admit()
    return thread.makeTask(id: id, operation)
}
