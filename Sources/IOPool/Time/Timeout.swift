// `withTimeout` and `withDeadline`: a time limit around any code, including code that mutates the
// caller's local, non-Sendable state (`try await withTimeout(.seconds(5)) { try await lines.next() }`
// on a local reader, in a loop).
//
// ## Design: why a child task that runs in the caller's isolation, not the caller's task itself
//
// A time limit must stop the operation, and the one stop every awaiting Swift API honours is task
// cancellation. But Swift cannot un-cancel a task. So the candidates were:
//
// 1. Run the operation inline in the caller's task, and let a timer cancel that task
//    (`UnsafeCurrentTask.cancel`). Rejected: after a timeout the caller's task would stay
//    cancelled for good, so its next read, sleep or `Task.checkCancellation()` would fail too.
// 2. Run it inline inside a cancellation scope that this library controls (cancel only this
//    section's I/O waits, as `TaskIOCancellation` routes a task's cancellation to them). Rejected:
//    it would stop only this library's waits. A `Task.sleep`, an `AsyncStream`, a continuation,
//    another library's I/O or a `Task.isCancelled` poll inside the operation would never see the
//    deadline, so the limit would silently not hold for them.
// 3. A child task in a task group whose closure is `sending` instead of `@Sendable` (what
//    `addTask` takes since Swift 6.0). Tried: it does not help. `withTimeout { await reader.next() }`
//    sends the closure, and with it the region of `reader`, so the caller can no longer use
//    `reader` afterwards ("sending value of non-Sendable type ... risks causing data races"):
//    a loop of reads does not compile.
// 4. (Chosen) A child task, as before, that runs the operation *in the caller's isolation*: the
//    operation is a non-Sendable `nonisolated(nonsending)` closure, handed to the child unchecked,
//    and the child calls it isolated to the caller's actor (`#isolation`; none for nonisolated
//    code, where the child inherits the caller's task executor preference, so on an ``IOThread``
//    it runs on that same thread). This is data-race free although the compiler cannot prove it:
//    the caller is suspended in the group for the whole time the child runs (it awaits the
//    group, which ends after the child, so the child's start and end happen-before/after the
//    caller's surrounding code), the timer child never touches the operation's state, and code
//    isolated to an actor runs on that actor. So the operation may mutate the caller's local
//    `var`s, capture `inout` parameters and non-copyable values (it is not escaping), and touch
//    what the caller's actor owns, exactly as inline code would.
//
//    Cancelling the child does not cancel the caller: a timeout leaves the caller's task as it
//    was. Task-local values are inherited by the child, so they are the caller's.
//
// The guarantees below (a result is never dropped; `TimeoutError` only for a cancellation the
// timer caused) come from looking at the operation's ending every time, never discarding it with
// `cancelAll`. The cost over inline code: two child tasks per call (the operation and the timer),
// plus, when the caller is isolated to an actor, one hop onto it for the child.

/// Thrown by ``withTimeout(_:operation:)`` and ``withDeadline(_:operation:)`` when the time limit
/// passed and the operation, cancelled for it, ended by cancellation.
public struct TimeoutError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The time limit that passed: the one given to ``withTimeout(_:operation:)``, or for
    /// ``withDeadline(_:operation:)`` the time that was left until the deadline when it was called
    /// (zero if it had already passed).
    public var timeout: Duration
    /// The deadline given to ``withDeadline(_:operation:)``; `nil` for ``withTimeout(_:operation:)``.
    public var deadline: IOClock.Instant?

    public init(timeout: Duration) {
        self.timeout = timeout
        self.deadline = nil
    }

    public init(timeout: Duration, deadline: IOClock.Instant) {
        self.timeout = timeout
        self.deadline = deadline
    }

    public var description: String {
        if let deadline {
            return "the operation did not finish by its deadline (\(deadline), \(timeout) after it began) and was cancelled"
        }
        return "the operation did not finish within \(timeout) and was cancelled"
    }
}

/// Runs `operation`; if it has not finished after `timeout`, cancels it, and throws
/// ``TimeoutError`` if it then ends by cancellation.
///
/// `operation` need not be `Sendable`: it runs in the caller's isolation (on the caller's actor,
/// or for nonisolated code where the caller runs, e.g. on the caller's ``IOThread``), so it may
/// mutate the caller's local state, as in a loop over a local reader:
///
/// ```swift
/// var lines = BufferedReader(stream).lines.makeAsyncIterator()  // a local, non-Sendable iterator
/// while let line = try await withTimeout(.seconds(30), operation: { try await lines.next() }) {
///     print(line)
/// }
/// ```
///
/// It runs as a child task of the caller, in the caller's isolation, and must honour
/// cancellation to end: this library's reads, writes, accepts, connects and sleeps do, as do
/// `Task.sleep` and `Task.checkCancellation()`. The call returns only once the operation has ended
/// (structured concurrency), so nothing outlives it. A timeout cancels only the operation: the
/// caller's task is not cancelled by it, and task-local values inside are the caller's.
///
/// What the caller gets is always what the operation did; a result is never dropped:
/// - The operation's value or error, whenever it ends with one, even after the deadline: a read
///   that took bytes from the socket as the timer fired returns them, an accept its connection.
///   So a loop of `withTimeout { try await stream.read() }` loses and reorders nothing.
/// - ``TimeoutError`` only when the timer fired, the operation was cancelled for it, and it then
///   threw `CancellationError` (for this library's operations: it had done nothing).
/// - `CancellationError` when the *calling* task is cancelled (the operation sees the
///   cancellation and ends), even if the timer fires meanwhile.
/// - If the timer itself fails (its loop is shutting down: `IOError` with `ECANCELED`), the
///   operation is cancelled too and the timer's error is thrown in place of ``TimeoutError``.
///
/// A `timeout` too long for the clock (`.seconds(Int64.max)`) never fires; zero or negative
/// cancels the operation at once (it still returns a value it finds without waiting).
///
/// ```swift
/// let bytes = try await withTimeout(.seconds(5)) { try await stream.read() }
/// ```
nonisolated(nonsending)
public func withTimeout<Success>(
    _ timeout: Duration, operation: nonisolated(nonsending) () async throws -> Success
) async throws -> Success {
    try await runWithTimer(
        until: IOClock.now.advanced(by: timeout), failure: TimeoutError(timeout: timeout),
        isolation: #isolation, operation)
}

/// Runs `operation`; if it has not finished by `deadline` (on ``IOClock``, the loops' monotonic
/// clock), cancels it, and throws ``TimeoutError`` (with ``TimeoutError/deadline`` set) if it then
/// ends by cancellation.
///
/// The same contract as ``withTimeout(_:operation:)`` in every other respect. One deadline for
/// several steps keeps their total bounded, where a timeout per step would not:
///
/// ```swift
/// let deadline = IOClock.now.advanced(by: .seconds(5))
/// let header = try await withDeadline(deadline) { try await reader.readLine() }
/// let body = try await withDeadline(deadline) { try await reader.readExactly(length) }
/// ```
///
/// A deadline already passed cancels the operation at once (it still returns a value it finds
/// without waiting); `IOClock.Instant(nanoseconds: .max)` never passes.
nonisolated(nonsending)
public func withDeadline<Success>(
    _ deadline: IOClock.Instant, operation: nonisolated(nonsending) () async throws -> Success
) async throws -> Success {
    let left = IOClock.now.duration(to: deadline)
    return try await runWithTimer(
        until: deadline, failure: TimeoutError(timeout: max(left, .zero), deadline: deadline),
        isolation: #isolation, operation)
}

/// The shared body of `withTimeout` and `withDeadline`: the operation and a timer as two
/// non-throwing children, so that every ending is an event in the loop below and the operation's
/// ending is always awaited and looked at, never discarded by `cancelAll`.
///
/// An `isolated` parameter rather than `nonisolated(nonsending)`: the closure given to
/// `withoutActuallyEscaping` is then isolated to it, so the checker accepts the operation there.
private func runWithTimer<Success>(
    until deadline: IOClock.Instant, failure timeoutError: TimeoutError,
    isolation: isolated (any Actor)?, _ operation: nonisolated(nonsending) () async throws -> Success
) async throws -> Success {
    try await withoutActuallyEscaping(operation) { escaping in
        _ = isolation  // makes this closure isolated to the caller, as the function is
        let call = OperationCall(escaping)
        let ending = await withTaskGroup(of: TimerEvent.self) { group -> Result<Success, any Error> in
            group.addTask {
                await call.run(isolatedTo: isolation)
                return .operationEnded
            }
            group.addTask {
                do {
                    try await sleep(until: deadline)
                    return .timerEnded(timeoutError)
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
                case .operationEnded:
                    group.cancelAll()  // the timer, if still pending
                    let result = call.takeResult()
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
}

/// The operation of one `withTimeout`, handed to its child task.
///
/// `@unchecked Sendable`: the caller is suspended in the task group from before the child starts
/// until after it ended, and `run` executes in the caller's isolation, so the operation and its
/// result are never touched by two contexts at once (see the design note above).
private final class OperationCall<Success>: @unchecked Sendable {
    private var operation: (nonisolated(nonsending) () async throws -> Success)?
    private var result: Result<Success, any Error>?

    init(_ operation: nonisolated(nonsending) @escaping () async throws -> Success) {
        self.operation = operation
    }

    /// Runs the operation on `isolation` (the caller's actor, or none) and keeps its ending.
    ///
    /// Drops its reference to the operation before it returns: the caller leaves
    /// `withoutActuallyEscaping` after the child ends, which traps if anything still holds the
    /// closure, and the child task itself may be released later, on another thread.
    @inline(never)
    func run(isolatedTo isolation: isolated (any Actor)?) async {
        let operation = self.operation.take()!
        do {
            result = .success(try await operation())
        } catch {
            result = .failure(error)
        }
    }

    func takeResult() -> Result<Success, any Error> { result.take()! }
}

/// An ending of one of `runWithTimer`'s two children.
private enum TimerEvent: Sendable {
    /// The operation returned or threw (its ending is in its `OperationCall`).
    case operationEnded
    /// The timer fired (``TimeoutError``) or failed (its error).
    case timerEnded(any Error)
    /// The timer was cancelled: by us after the operation ended, or with the calling task.
    case timerCancelled
}
