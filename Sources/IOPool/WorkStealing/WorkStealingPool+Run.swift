extension WorkStealingPool {
    /// Builds a pool, runs `operation` on it, and returns the operation's result once the operation
    /// **and every task spawned on the pool** have finished; then shuts the pool down.
    /// tokio-threadpool's `run` (spawn, then `shutdown_on_idle`).
    ///
    /// ```swift
    /// let answer = try await WorkStealingPool.run { pool in
    ///     try pool.spawn { /* keeps run() waiting until it ends */ }
    ///     return 42
    /// }
    /// ```
    public static func run<Success: Sendable>(
        configuration: Configuration = Configuration(),
        _ operation: @escaping @Sendable (WorkStealingPool) async throws -> Success
    ) async throws -> Success {
        let pool = try WorkStealingPool(configuration: configuration)
        let task = try pool.spawn { try await operation(pool) }
        let result = await task.result
        await pool.shutdownGracefully()
        return try result.get()
    }
}
