/// Suspends the calling task for `duration` on its loop's timers (see ``IOClock``).
///
/// - Throws: `CancellationError` if the task is cancelled first; the timer is removed at once.
public func sleep(for duration: Duration) async throws {
    try await IOClock().sleep(until: IOClock.Instant.now.advanced(by: duration))
}

/// Suspends the calling task until `deadline` on its loop's timers (see ``IOClock``).
public func sleep(until deadline: IOClock.Instant) async throws {
    try await IOClock().sleep(until: deadline)
}
