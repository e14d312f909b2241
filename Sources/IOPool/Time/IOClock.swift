import Glibc

/// A monotonic clock (CLOCK_MONOTONIC, nanoseconds) whose `sleep` arms the timer of the current
/// ``IOThread``'s loop, or outside any pool a thread of ``IOThreadPool/default``: no Dispatch
/// timer, and the task wakes on the loop that runs it.
///
/// Works wherever a `Clock` is accepted:
///
/// ```swift
/// try await Task.sleep(for: .milliseconds(5), clock: IOClock())
/// try await IOClock().sleep(until: .now.advanced(by: .seconds(1)))
/// ```
public struct IOClock: Clock, Sendable {
    /// A point in time: nanoseconds since an arbitrary start (boot, on Linux).
    public struct Instant: InstantProtocol, Sendable, Hashable, Comparable, CustomStringConvertible {
        /// Nanoseconds on CLOCK_MONOTONIC.
        public var nanoseconds: UInt64

        public init(nanoseconds: UInt64) {
            self.nanoseconds = nanoseconds
        }

        /// The current instant.
        public static var now: Instant { Instant(nanoseconds: monotonicNanoseconds()) }

        /// Saturates: before the clock's start is 0, and past its end (`.seconds(Int64.max)`
        /// from now, say) is `UInt64.max` nanoseconds, a deadline that never passes.
        public func advanced(by duration: Duration) -> Instant {
            Instant(nanoseconds: nanoseconds.advanced(byNanoseconds: duration.exactNanoseconds))
        }

        public func duration(to other: Instant) -> Duration {
            if other.nanoseconds >= nanoseconds {
                return .nanoseconds(Int64(clamping: other.nanoseconds - nanoseconds))
            }
            return .nanoseconds(-Int64(clamping: nanoseconds - other.nanoseconds))
        }

        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

        public var description: String { "IOClock.Instant(\(nanoseconds) ns)" }
    }

    public init() {}

    /// The current instant, as `ContinuousClock.now` is: `IOClock.now`.
    public static var now: Instant { .now }

    /// The current instant (the `Clock` requirement; the same as ``IOClock/now-swift.type.property``).
    public var now: Instant { .now }

    /// The loop's timers take nanosecond deadlines (`epoll_pwait2`).
    public var minimumResolution: Duration { .nanoseconds(1) }

    /// Suspends until `deadline`; throws `CancellationError` if the task is cancelled first
    /// (the timer is removed at once). `tolerance` is ignored: timers fire as soon as they are due.
    ///
    /// `nonisolated(nonsending)`: entered without an executor switch; the task comes back to the
    /// caller's actor or executor afterwards (see ``sleep(for:)``).
    nonisolated(nonsending)
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await SleepDispatcher.sleep(untilNanoseconds: deadline.nanoseconds)
    }
}

extension Clock where Self == IOClock {
    /// The loop clock: `Task.sleep(for: .seconds(1), clock: .io)`.
    public static var io: IOClock { IOClock() }
}
