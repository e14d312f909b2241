/// The one conversion from `Duration` to the nanoseconds that the loops' timers, deadlines and
/// `epoll_pwait2` take, and the one way to add such nanoseconds to an instant.
///
/// Why one place: `Duration` holds 128-bit attoseconds, so `.seconds(10_000_000_000)` or
/// `.seconds(Int64.max)` is more nanoseconds than an `Int64` (or a `UInt64` deadline) holds. The
/// old conversions multiplied with wrapping arithmetic, and such durations came out as a few
/// milliseconds or as the past: `sleep(for: .seconds(Int64.max))` returned at once and
/// `withTimeout(.seconds(Int64.max))` timed out at once. Here every conversion saturates, and a
/// deadline past the end of `UInt64` is `UInt64.max`, which the timers treat as "never".
extension Duration {
    /// The duration in nanoseconds, truncated toward zero; exact (no `Duration` overflows it).
    var exactNanoseconds: Int128 {
        let (seconds, attoseconds) = components
        return Int128(seconds) * 1_000_000_000 + Int128(attoseconds / 1_000_000_000)
    }

    /// The duration in whole nanoseconds: negative durations count as zero, and durations longer
    /// than `UInt64.max` nanoseconds (584 years) as `UInt64.max` ("never").
    var wholeNanoseconds: UInt64 { UInt64(clamping: exactNanoseconds) }
}

extension UInt64 {
    /// This CLOCK_MONOTONIC instant (nanoseconds) moved by `nanoseconds`, saturating at 0 and at
    /// `UInt64.max` ("never").
    func advanced(byNanoseconds nanoseconds: Int128) -> UInt64 {
        UInt64(clamping: Int128(self) + nanoseconds)
    }
}

/// The CLOCK_MONOTONIC deadline `nanoseconds` from now; `UInt64.max` ("never") if that is past
/// the end of the clock.
func monotonicDeadline(afterNanoseconds nanoseconds: UInt64) -> UInt64 {
    let (sum, overflow) = monotonicNanoseconds().addingReportingOverflow(nanoseconds)
    return overflow ? .max : sum
}
