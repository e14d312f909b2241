/// Ticks every `period` on the loop's timers, as an `AsyncSequence` of the instants they were due.
///
/// ```swift
/// for try await tick in intervals(every: .seconds(1)) { print(tick) }
/// ```
///
/// The first tick comes one period after the first `next()`. A consumer that falls behind is not
/// sent a burst of missed ticks: the next tick is due one period after the late one was taken
/// (tokio's `MissedTickBehavior::Delay`). The sequence ends with `CancellationError` when the
/// task is cancelled.
public func intervals(every period: Duration) -> IntervalSequence {
    usagePrecondition(period > .zero, "intervals(every:) needs a positive period, got \(period)")
    return IntervalSequence(period: period)
}

/// See ``intervals(every:)``.
public struct IntervalSequence: AsyncSequence, Sendable {
    public typealias Element = IOClock.Instant
    public let period: Duration

    public func makeAsyncIterator() -> Iterator { Iterator(period: period) }

    public struct Iterator: AsyncIteratorProtocol {
        let period: Duration
        var due: IOClock.Instant?

        public mutating func next() async throws -> IOClock.Instant? {
            try await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> IOClock.Instant? {
            let now = IOClock.Instant.now
            let deadline = Swift.max(due ?? now.advanced(by: period), now)
            try await sleep(until: deadline)
            due = IOClock.Instant.now.advanced(by: period)
            return deadline
        }
    }
}
