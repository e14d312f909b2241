/// Suspends the calling task for `duration` on its loop's timers (see ``IOClock``).
///
/// `nonisolated(nonsending)`: entered without an executor switch, and the task comes back to the
/// caller's actor or executor afterwards. (The timer is armed by the loop's own sleep, which still
/// runs on the task's executor: on an IOThread task that is the caller's thread.)
/// - Throws: `CancellationError` if the task is cancelled first; the timer is removed at once.
///   `IOError` (`ECANCELED`) if the timer's loop has shut down.
nonisolated(nonsending)
public func sleep(for duration: Duration) async throws {
    try await SleepDispatcher.sleep(untilNanoseconds: IOClock.Instant.now.advanced(by: duration).nanoseconds)
}

/// Suspends the calling task until `deadline` on its loop's timers (see ``IOClock``).
///
/// `nonisolated(nonsending)`: entered without an executor switch, and the task comes back to the
/// caller's actor or executor afterwards. (The timer is armed by the loop's own sleep, which still
/// runs on the task's executor: on an IOThread task that is the caller's thread.)
/// - Throws: as ``sleep(for:)``.
nonisolated(nonsending)
public func sleep(until deadline: IOClock.Instant) async throws {
    try await SleepDispatcher.sleep(untilNanoseconds: deadline.nanoseconds)
}
