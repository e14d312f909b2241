import IOPool
import ServiceLifecycle
import Synchronization

// The pools as swift-service-lifecycle `Service`s: a ServiceGroup starts them with the other
// services and stops them with the pools' own shutdowns (`shutdownGracefully()`, `shutdown()`);
// this file adds no lifecycle state of its own, only the mapping:
//
//   graceful shutdown of the group  ->  shutdownGracefully()  (waits for the pool's tasks)
//   cancellation of the service     ->  shutdown()            (cancels them)
//
// Order: a ServiceGroup starts its services in array order and shuts them down gracefully in
// reverse order, each after the later one has returned. List a pool BEFORE the services that run
// on it (a server, its accept loop), so that it shuts down AFTER them: the server stops accepting
// first, then the pool drains the connections still running on it, then its threads stop.
//
//     let pool = try IOThreadPool()
//     let group = ServiceGroup(configuration: .init(
//         services: [.init(service: pool), .init(service: server)],  // pool first: it stops last
//         gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
//     try await group.run()

extension IOThreadPool: Service {
    /// Runs until the service group shuts down gracefully, then shuts the pool down gracefully
    /// (``IOThreadPool/shutdownGracefully()``: waits for every task spawned on the pool, then stops
    /// and joins the threads) and returns.
    ///
    /// The pool is already running when `run()` starts (its `init` starts the threads); `run()` only
    /// decides when it stops. Order in a `ServiceGroup`: list the pool before the services that run
    /// on it, so that it stops after them (the group shuts services down in reverse order).
    ///
    /// - Throws: `CancellationError` after an immediate shutdown: when the task running `run()` is
    ///   cancelled (the group was cancelled, or its `maximumGracefulShutdownDuration` passed) before
    ///   or during the graceful shutdown, it calls ``IOThreadPool/shutdown()``, which cancels the
    ///   pool's tasks, waits for them to unwind and stops the threads, and then throws.
    ///   Outside a `ServiceGroup` there is no graceful shutdown to wait for: only cancellation ends it.
    /// - Important: Must not run on a thread of this pool (the shutdown would wait for itself: a
    ///   usage error, reported with `fatalError`). Run the group from a plain task.
    public func run() async throws {
        try await runUntilShutdown(gracefully: { await self.shutdownGracefully() }, immediately: { await self.shutdown() })
    }
}

extension WorkStealingPool: Service {
    /// Runs until the service group shuts down gracefully, then shuts the pool down gracefully
    /// (``WorkStealingPool/shutdownGracefully()``: waits for every task spawned on the pool, then
    /// stops its workers and threads) and returns.
    ///
    /// The pool is already running when `run()` starts; `run()` only decides when it stops. Order
    /// in a `ServiceGroup`: list the pool before the services that run on it, so that it stops after
    /// them (the group shuts services down in reverse order).
    ///
    /// - Throws: `CancellationError` after an immediate shutdown: when the task running `run()` is
    ///   cancelled (the group was cancelled, or its `maximumGracefulShutdownDuration` passed) before
    ///   or during the graceful shutdown, it calls ``WorkStealingPool/shutdown()``, which cancels the
    ///   pool's tasks, waits for them to unwind and stops the threads, and then throws.
    ///   Outside a `ServiceGroup` there is no graceful shutdown to wait for: only cancellation ends it.
    /// - Important: Must not run on a worker of this pool (the shutdown would wait for itself: a
    ///   usage error, reported with `fatalError`). Run the group from a plain task.
    public func run() async throws {
        try await runUntilShutdown(gracefully: { await self.shutdownGracefully() }, immediately: { await self.shutdown() })
    }
}

/// Waits for the group's graceful shutdown, then runs `gracefully`; cancellation at any point runs
/// `immediately` (which, for both pools, escalates a graceful shutdown in progress and is
/// idempotent) and ends with `CancellationError`.
private func runUntilShutdown(
    gracefully: @escaping @Sendable () async -> Void,
    immediately: @escaping @Sendable () async -> Void
) async throws {
    do {
        try await gracefulShutdown()  // throws CancellationError if cancelled first
    } catch {
        await immediately()
        throw CancellationError()
    }
    let escalation = Escalation()
    await withTaskCancellationHandler {
        await gracefully()
    } onCancel: {
        // The handler cannot await: the immediate shutdown runs as its own task, and the graceful
        // one (waiting for the same tasks and the same stop) returns when it has finished.
        escalation.started.store(true, ordering: .relaxed)
        Task { await immediately() }
    }
    if escalation.started.load(ordering: .relaxed) {
        await immediately()  // idempotent: returns once the escalated shutdown has finished
        throw CancellationError()
    }
}

private final class Escalation: Sendable {
    let started = Atomic<Bool>(false)
}
