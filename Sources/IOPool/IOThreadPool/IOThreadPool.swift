import Synchronization

/// A pool of threads, each running its own event loop with its own epoll reactor: the design of
/// the Rust crate tokio-io-pool, with Swift tasks.
///
/// Tasks are placed on the threads round-robin. A task, and every task it starts with ``spawn(_:)->Task<Success,Never>``,
/// `async let` or a task group, stays on its thread for life: **all children of a task group inside
/// a pool task run on the parent's one thread** (they inherit its task executor preference). To
/// spread children over the threads, as an accept loop wants one connection per child, use
/// ``withSpreadingDiscardingTaskGroup(body:)`` or ``withThrowingSpreadingDiscardingTaskGroup(body:)``,
/// whose `addTask` places each child on the next thread. A socket registers with the reactor
/// of the thread that first awaits it, so its readiness events wake tasks on that same thread: no
/// cross-thread hand-off and no locks on the I/O path.
///
/// ```swift
/// let pool = try IOThreadPool(configuration: .init(threadCount: 4))
/// let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
/// try pool.spawn {
///     try await pool.spawnAll(listener.connections) { connection in
///         _ = try? await copy(from: connection, to: connection)
///         connection.close()
///     }
/// }
/// // ...
/// await pool.shutdownGracefully()
/// ```
///
/// ## Lifetime
///
/// Shut a pool down with ``shutdownGracefully()`` (waits for its tasks) or ``shutdown()`` (cancels
/// them). A pool that is released without a shutdown is **not** stopped: its threads, and the tasks
/// and sockets on them, live on until the process exits (a deinit cannot wait for tasks, and
/// blocking in one could deadlock when the last reference is dropped on a pool thread).
public final class IOThreadPool: Sendable {
    /// The pool's threads, in index order.
    public let threads: [IOThread]
    /// Number of threads (event loops), `threads.count`.
    public var threadCount: Int { threads.count }
    let accounting: TaskAccounting
    private let roundRobin = Atomic<UInt>(0)
    private let stopOnce = AsyncOnce()
    /// The pool's name, `IOThreadPool(` + the thread name prefix + `*)`, as in its log metadata and
    /// errors.
    public let name: String

    /// Starts the threads; returns once every thread's loop is running.
    /// - Throws: ``IOPoolError/threadStartFailed(name:errno:)`` if the OS refuses a thread (the
    ///   threads already started are stopped first), ``IOPoolError/invalidConfiguration(_:)`` for a
    ///   thread count or `maxBlocking` below 1.
    public init(configuration: Configuration = Configuration()) throws(IOPoolError) {
        guard configuration.threadCount >= 1 else {
            throw .invalidConfiguration("threadCount must be at least 1, got \(configuration.threadCount)")
        }
        guard configuration.maxBlocking >= 1 else {
            throw .invalidConfiguration("maxBlocking must be at least 1, got \(configuration.maxBlocking)")
        }
        let name = "IOThreadPool(\(configuration.threadNamePrefix)*)"
        let events = PoolEvents(logger: configuration.logger, poolName: name, poolKind: "IOThreadPool")
        let blockingCapacity = BlockingCapacity(limit: configuration.maxBlocking, events: events)
        let accounting = TaskAccounting(poolName: name)
        var threads: [IOThread] = []
        do throws(IOPoolError) {
            for index in 0..<configuration.threadCount {
                let thread: IOThread
                do {
                    thread = try IOThread(
                        index: index, name: PThread.truncatedName("\(configuration.threadNamePrefix)\(index + 1)"),
                        accounting: accounting, blockingCapacity: blockingCapacity, events: events)
                } catch {
                    throw IOPoolError.threadStartFailed(name: "\(configuration.threadNamePrefix)\(index + 1)", errno: error.errno)
                }
                try thread.start(
                    stackSize: configuration.stackSize, afterStart: configuration.afterStart,
                    beforeStop: configuration.beforeStop)
                threads.append(thread)
            }
        } catch {
            for thread in threads { thread.requestStop() }
            for thread in threads { thread.joinThread() }
            throw error
        }
        self.threads = threads
        self.accounting = accounting
        self.name = name
    }

    /// The next thread in round-robin order (one relaxed atomic increment, shared by all callers).
    public func next() -> IOThread {
        let ticket = roundRobin.wrappingAdd(1, ordering: .relaxed).oldValue
        return threads[Int(ticket % UInt(threads.count))]
    }

    /// Starts `operation` on the next thread (round-robin); it stays there for life.
    /// - Throws: ``IOPoolError/shutDown(pool:)`` once the pool has shut down.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async -> Success
    ) throws(IOPoolError) -> Task<Success, Never> {
        try next().spawn(operation)
    }

    /// Starts a throwing `operation` on the next thread (round-robin); it stays there for life.
    @discardableResult
    public func spawn<Success: Sendable>(
        _ operation: sending @escaping () async throws -> Success
    ) throws(IOPoolError) -> Task<Success, any Error> {
        try next().spawn(operation)
    }

    /// Number of tasks spawned on the pool that have not finished.
    public var liveTaskCount: Int { accounting.liveCount }

    /// Per-thread counters, in thread order.
    public var metrics: [IOThread.Metrics] { threads.map(\.metrics) }

    // MARK: Shutdown

    /// Waits until every task spawned on the pool has finished (tasks may keep spawning children
    /// meanwhile), then stops and joins the threads. tokio-io-pool's `shutdown_on_idle`.
    ///
    /// Idempotent: concurrent and later calls wait for the same shutdown. Must not be awaited from
    /// a task of this pool, which would wait for itself.
    public func shutdownGracefully() async {
        preconditionNotOnPool("shutdownGracefully()")
        await accounting.drain()
        await stopThreads()
    }

    /// Cancels every live task spawned on the pool, waits for them to unwind, then stops and joins
    /// the threads. Tasks cannot be dropped in Swift, so cancellation is the honest equivalent of
    /// tokio-io-pool's immediate shutdown: pending I/O on this library's sockets ends with
    /// `CancellationError`. Idempotent; escalates a graceful shutdown in progress.
    public func shutdown() async {
        preconditionNotOnPool("shutdown()")
        await accounting.cancelAll()
        await stopThreads()
    }

    private func preconditionNotOnPool(_ function: String) {
        if let current = IOThread.current {
            usagePrecondition(
                !threads.contains { $0 === current },
                "\(function) awaited on \(current.name), a thread of the pool it shuts down, would wait for itself; call it from outside the pool (e.g. a plain Task)")
        }
    }

    private func stopThreads() async {
        await stopOnce.run {
            for thread in threads { thread.requestStop() }
            for thread in threads { await thread.waitUntilExited() }
        }
    }

    // MARK: The default pool

    /// The process-wide pool, started lazily on first use, never shut down. Sockets used outside
    /// any pool register here, and ``spawn(_:)->Task<Success,Never>`` called outside any pool places tasks here.
    /// Its size is ``TaskPoolConfiguration/defaultThreadCount``; its threads are named `iopool-def-N`.
    public static let `default`: IOThreadPool = {
        do {
            return try IOThreadPool(configuration: .init(threadNamePrefix: "iopool-def-"))
        } catch {
            fatalError("could not start the default IOThreadPool: \(error)")
        }
    }()
}
