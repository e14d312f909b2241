/// Thrown by ``withTimeout(_:operation:)`` when the time limit passed and the operation, cancelled
/// for it, ended by cancellation.
public struct TimeoutError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The time limit that passed.
    public var timeout: Duration

    public init(timeout: Duration) {
        self.timeout = timeout
    }

    public var description: String { "the operation did not finish within \(timeout) and was cancelled" }
}

/// Runs `operation`; if it has not finished after `timeout`, cancels it, and throws
/// ``TimeoutError`` if it then ends by cancellation.
///
/// The operation runs as a child task (on the caller's ``IOThread`` when called on one) and must
/// honour cancellation to end: this library's reads, writes, accepts and sleeps do. The call returns
/// only once the operation has ended (structured concurrency), so nothing outlives it.
///
/// What the caller gets is always what the operation did; a result is never dropped:
/// - The operation's value or error, whenever it ends with one, even after the deadline: a read
///   that took bytes from the socket as the timer fired returns them, an accept its connection.
///   So a loop of `withTimeout { try await stream.read() }` loses and reorders nothing.
/// - ``TimeoutError`` only when the timer fired, the operation was cancelled for it, and it then
///   threw `CancellationError` (for this library's operations: it had done nothing).
/// - `CancellationError` when the *calling* task is cancelled (the operation sees the
///   cancellation and ends), even if the timer fires meanwhile.
/// - If the timer itself fails (its loop is shutting down), the operation is cancelled too and
///   the timer's error is thrown in place of ``TimeoutError``.
///
/// A `timeout` too long for the clock (`.seconds(Int64.max)`) never fires; zero or negative
/// cancels the operation at once (it still returns a value it finds without waiting).
///
/// ```swift
/// let bytes = try await withTimeout(.seconds(5)) { try await stream.read() }
/// ```
public func withTimeout<Success: Sendable>(
    _ timeout: Duration, operation: @escaping @Sendable () async throws -> Success
) async throws -> Success {
    // Non-throwing children, so that every ending is an event in the loop below and the
    // operation's ending is always awaited and looked at, never discarded by `cancelAll`.
    let ending = await withTaskGroup(of: TimeoutEvent<Success>.self) { group -> Result<Success, any Error> in
        group.addTask {
            do {
                return .operationEnded(.success(try await operation()))
            } catch {
                return .operationEnded(.failure(error))
            }
        }
        group.addTask {
            do {
                try await sleep(for: timeout)
                return .timerEnded(TimeoutError(timeout: timeout))
            } catch is CancellationError {
                return .timerCancelled
            } catch {
                return .timerEnded(error)
            }
        }
        // Set once the timer has ended and the operation has been cancelled for it.
        var timerError: (any Error)?
        while let event = await group.next() {
            switch event {
            case .operationEnded(let result):
                group.cancelAll()  // the timer, if still pending
                if let timerError, case .failure(let error) = result, error is CancellationError,
                    !Task.isCancelled
                {
                    return .failure(timerError)
                }
                return result
            case .timerEnded(let error):
                timerError = error
                group.cancelAll()  // the operation; its ending comes next
            case .timerCancelled:
                continue  // the caller was cancelled, and so is the operation: its ending comes next
            }
        }
        preconditionFailure("withTimeout's operation child ended without reporting")
    }
    return try ending.get()
}

/// An ending of one of ``withTimeout(_:operation:)``'s two children.
private enum TimeoutEvent<Success: Sendable>: Sendable {
    /// The operation returned or threw.
    case operationEnded(Result<Success, any Error>)
    /// The timer fired (``TimeoutError``) or failed (its error).
    case timerEnded(any Error)
    /// The timer was cancelled: by us after the operation ended, or with the calling task.
    case timerCancelled
}
