// `blocking { }` elsewhere (Swift's global executor, an actor of its own) and from any actor: the
// process-wide budget of code outside both pools, and the way itself: a unit of the budget, then
// `body` on a thread of the blocking reserve while the task waits (`BlockingHandOff`).

/// The budget of `blocking { }` outside any pool (on Swift's global executor, on an actor that is
/// not pinned to an ``IOThread``): one for the whole process.
public enum OffPoolBlocking {
    static let capacity = BlockingCapacity(limit: 512)

    /// Most off-pool `blocking { }` sections running at once, process-wide; later ones wait, first
    /// come first served. Default 512, as tokio's `max_blocking_threads`. May be changed at any
    /// time: a higher limit admits waiting calls at once, a lower one takes effect as running
    /// sections end. Must be at least 1.
    public static var maxBlocking: Int {
        get { capacity.limit }
        set {
            usagePrecondition(newValue >= 1, "OffPoolBlocking.maxBlocking must be at least 1, got \(newValue)")
            capacity.limit = newValue
        }
    }
}

extension BlockingHandOff {
    /// Off-pool `blocking { }` (and from an actor): takes a unit of `budget`, then runs `body` on a
    /// reserve thread.
    static func runOffPool<Value, Failure: Error>(
        _ body: sending () throws(Failure) -> Value, budget: BlockingCapacity
    ) async throws -> sending Value {
        try await budget.acquire()
        return try await runOnBlockingThread(body, releasing: budget)
    }
}
