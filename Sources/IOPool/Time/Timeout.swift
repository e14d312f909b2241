/// Thrown by ``withTimeout(_:operation:)`` when the operation did not finish in time.
public struct TimeoutError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The time limit that passed.
    public var timeout: Duration

    public init(timeout: Duration) {
        self.timeout = timeout
    }

    public var description: String { "the operation did not finish within \(timeout) and was cancelled" }
}

/// Runs `operation`; if it has not finished after `timeout`, cancels it and throws ``TimeoutError``.
///
/// The operation runs as a child task (on the caller's ``IOThread`` when called on one) and must
/// honour cancellation to end: this library's reads, writes, accepts and sleeps do. The call returns
/// only once the operation has ended (structured concurrency), so nothing outlives it.
///
/// ```swift
/// let bytes = try await withTimeout(.seconds(5)) { try await stream.read() }
/// ```
public func withTimeout<Success: Sendable>(
    _ timeout: Duration, operation: @escaping @Sendable () async throws -> Success
) async throws -> Success {
    try await withThrowingTaskGroup(of: TimeoutOutcome<Success>.self) { group in
        group.addTask { .finished(try await operation()) }
        group.addTask {
            try await sleep(for: timeout)
            return .timedOut
        }
        defer { group.cancelAll() }
        switch try await group.next()! {
        case .finished(let value):
            return value
        case .timedOut:
            throw TimeoutError(timeout: timeout)
        }
    }
}

/// What finished first in ``withTimeout(_:operation:)``.
private enum TimeoutOutcome<Success: Sendable>: Sendable {
    case finished(Success)
    case timedOut
}
