public import IOPool

/// Where an ``IOPoolApplication`` runs its connections: either of IOPool's pools, as
/// `HTTPServer.serve` takes them.
public enum IOPoolApplicationPool: Sendable {
    /// One listener per thread (`SO_REUSEPORT`): a connection, its requests, handlers and
    /// middleware all stay on the thread that accepted it. The choice for many short requests.
    case ioThreads(IOThreadPool)
    /// One listener, accepted on one worker; connections are tasks on the pool's queues that idle
    /// workers steal. The choice when handlers are uneven (some long, some blocking).
    case workStealing(WorkStealingPool)
}
