@testable import IOPool
import Testing

/// Returns once a task waits on `handle` for `interest`, i.e. its operation is pending in the
/// reactor (`SocketHandle.hasWaiter`, checked every millisecond): a cancel or close after this
/// hits a waiting operation for certain. Records an issue after 20 s (a hang guard, generous: the
/// parallel test run on 2 cores can keep this task from running for seconds).
func waitUntilPending(
    _ handle: SocketHandle, _ interest: Registration.Interest = .read, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let guardDeadline = hangGuard(seconds: 20)
    while !(await handle.hasWaiter(interest)) {
        if monotonicNanoseconds() > guardDeadline {
            Issue.record("the operation never became pending", sourceLocation: sourceLocation)
            return
        }
        try await Task.sleep(for: .milliseconds(1))
    }
}
