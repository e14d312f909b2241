import IOPool
import ServiceLifecycle

/// A ServiceGroup running in a task, whose end a test can wait for with a time limit: awaiting a
/// `Task`'s value ignores the waiter's cancellation, so a group that never returned would hang the
/// test past any `withTimeout`; this waits on a stream the task finishes instead.
struct GroupRun: Sendable {
    let task: Task<Void, any Error>
    private let ended: AsyncStream<Void>

    init(_ group: ServiceGroup) {
        let (ended, endedContinuation) = AsyncStream.makeStream(of: Void.self)
        self.ended = ended
        task = Task {
            defer { endedContinuation.finish() }
            try await group.run()
        }
    }

    /// The group's own outcome, or `TimeoutError` when it has not ended within `timeout`.
    func waitForEnd(within timeout: Duration) async throws {
        try await withTimeout(timeout) {
            for await _ in ended {}
            try Task.checkCancellation()  // ended by the timeout, not by the group
        }
        try await task.value  // ended: returns at once
    }
}
