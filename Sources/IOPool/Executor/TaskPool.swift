import Logging

// The shape both pools share: what code that only starts tasks on a pool and shuts it down needs,
// so that it can take either pool (`some TaskPool`, `any TaskPool`) without an adapter, and
// `run` is written once for both. What differs stays on each type: IOThreadPool's threads and
// `next()`, its listeners and spreading task groups; WorkStealingPool's executor, `keepAlive` and
// global-executor installation.

/// A pool of threads that runs the tasks spawned on it until it shuts down: ``IOThreadPool`` and
/// ``WorkStealingPool``.
///
/// ```swift
/// func serveOne<Pool: TaskPool>(on pool: Pool, _ connection: TCPStream) throws(IOPoolError) {
///     try pool.spawn {
///         _ = try? await copy(from: connection, to: connection)
///         connection.close()
///     }
/// }
/// ```
public protocol TaskPool: AnyObject, Sendable {
    /// How to build the pool; the settings both pools have are ``TaskPoolConfiguration``'s.
    associatedtype Configuration: TaskPoolConfiguration
    /// A point-in-time copy of the pool's counters: one ``IOThread/Metrics`` per thread on
    /// ``IOThreadPool``, ``WorkStealingPool/Metrics`` (its workers' and its shared driver's) on
    /// ``WorkStealingPool``. The two pools count different things, so each keeps its own type.
    associatedtype Metrics: Sendable

    /// Builds the pool and starts its threads (see each pool for which and when).
    /// - Throws: ``IOPoolError/invalidConfiguration(_:)`` for a setting out of range,
    ///   ``IOPoolError/threadStartFailed(name:errno:)`` if the OS refuses a thread.
    init(configuration: Configuration) throws(IOPoolError)

    /// The pool's name (its kind and thread name prefix), as in its log metadata and errors.
    var name: String { get }

    /// Number of threads running the pool's tasks at once (``IOThreadPool``'s loops,
    /// ``WorkStealingPool``'s workers), ``TaskPoolConfiguration/threadCount``.
    var threadCount: Int { get }

    /// Starts `operation` as a new task on the pool.
    /// - Throws: ``IOPoolError/shutDown(pool:)`` once the pool has shut down.
    @discardableResult
    func spawn<Success: Sendable>(
        _ operation: sending @escaping () async -> Success
    ) throws(IOPoolError) -> Task<Success, Never>

    /// Starts a throwing `operation` as a new task on the pool.
    /// - Throws: ``IOPoolError/shutDown(pool:)`` once the pool has shut down.
    @discardableResult
    func spawn<Success: Sendable>(
        _ operation: sending @escaping () async throws -> Success
    ) throws(IOPoolError) -> Task<Success, any Error>

    /// Number of tasks spawned on the pool that have not finished.
    var liveTaskCount: Int { get }

    /// The pool's counters now.
    var metrics: Metrics { get }

    /// Waits until every task spawned on the pool has finished (tasks may keep spawning children
    /// meanwhile), then stops the threads. Idempotent. Must not be awaited from a task of this pool,
    /// which would wait for itself.
    func shutdownGracefully() async

    /// Cancels every live task spawned on the pool, waits for them to unwind, then stops the
    /// threads. Idempotent; escalates a graceful shutdown in progress.
    func shutdown() async
}

extension TaskPool {
    /// Starts a pool, runs `operation` on it, and returns the operation's result once the operation
    /// **and every task spawned on the pool** have finished; then shuts the pool down.
    /// tokio-io-pool's and tokio-threadpool's `run` (spawn, then `shutdown_on_idle`).
    ///
    /// ```swift
    /// let answer = try await IOThreadPool.run { pool in
    ///     try pool.spawn { /* keeps run() waiting until it ends */ }
    ///     return 42
    /// }
    /// ```
    public static func run<Success: Sendable>(
        configuration: Configuration = Configuration(),
        _ operation: @escaping @Sendable (Self) async throws -> Success
    ) async throws -> Success {
        let pool = try Self(configuration: configuration)
        let task = try pool.spawn { try await operation(pool) }
        let result = await task.result
        await pool.shutdownGracefully()
        return try result.get()
    }
}

/// The settings both pools' configurations have, under the same names and meanings.
public protocol TaskPoolConfiguration: Sendable {
    /// Every setting at its default.
    init()
    /// Number of threads running the pool's tasks at once. Default: ``defaultThreadCount``. Must
    /// be at least 1.
    var threadCount: Int { get set }
    /// Threads are named `threadNamePrefix` + a 1-based number, truncated to the 15 bytes Linux
    /// allows.
    var threadNamePrefix: String { get set }
    /// Most `blocking { }` sections running at once on the pool's threads; later ones wait, first
    /// come first served. Default 512, as tokio's `max_blocking_threads`. Must be at least 1.
    var maxBlocking: Int { get set }
    /// Stack size of each thread in bytes; `nil` keeps the system default.
    var stackSize: Int? { get set }
    /// Runs on a pool thread before it runs anything, given the thread's 0-based number (one less
    /// than the number in its name).
    var afterStart: (@Sendable (Int) -> Void)? { get set }
    /// Runs on a pool thread just before it exits, given the same number as ``afterStart``.
    var beforeStop: (@Sendable (Int) -> Void)? { get set }
    /// Where the pool reports its rare events; never called per job, poll or message.
    var logger: Logger { get set }
}

extension TaskPoolConfiguration {
    /// The CPUs this process may use: `sched_getaffinity`, capped by cgroup v2 `cpu.max`. Both
    /// pools' default thread count.
    public static var defaultThreadCount: Int { ProcessorCount.available }
}

extension IOThreadPool: TaskPool {}
extension IOThreadPool.Configuration: TaskPoolConfiguration {}
extension WorkStealingPool: TaskPool {}
extension WorkStealingPool.Configuration: TaskPoolConfiguration {}
