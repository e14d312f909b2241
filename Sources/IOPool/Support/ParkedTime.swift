import Synchronization

/// How long a loop (an ``IOThread``) or a worker (of a ``WorkStealingPool``) has spent parked:
/// blocked waiting for work (in `epoll_wait` with a timeout other than zero, or in its `Parker`),
/// for the busy-time metric (tokio's `worker_total_busy_duration`).
///
/// Two clock reads per park (vDSO `clock_gettime`, no system call), none per job: a park happens at
/// most once per loop turn, and only when the loop has nothing to run. The cost, measured with
/// `.ci/counts-budget.sh`, is in BENCHMARKS.md ("Metrics export (issue 13)").
///
/// Single writer (the thread that runs the loop or holds the worker; a `blocking { }` hand-off
/// orders the old holder's last write before the new holder's first), any reader. Born parked
/// (`since` is the creation time), so that a worker whose thread has not started yet counts as idle.
final class ParkedTime: Sendable {
    /// Nanoseconds parked in parks that have ended.
    private let total = Atomic<UInt64>(0)
    /// When the park in progress began (CLOCK_MONOTONIC); 0 while not parked.
    private let since: Atomic<UInt64>
    /// When the loop or worker was created.
    let createdAt: UInt64

    init() {
        let now = monotonicNanoseconds()
        createdAt = now
        since = Atomic(now)
    }

    /// Called just before blocking. Writer only.
    @inline(__always)
    func begin() {
        since.store(monotonicNanoseconds(), ordering: .relaxed)
    }

    /// Called just after blocking; does nothing when not parked. Writer only.
    @inline(__always)
    func end() {
        let began = since.load(ordering: .relaxed)
        guard began != 0 else { return }
        let parked = monotonicNanoseconds() &- began
        total.store(total.load(ordering: .relaxed) &+ parked, ordering: .relaxed)
        since.store(0, ordering: .relaxed)
    }

    /// Parked and busy (not parked) nanoseconds since creation, the park in progress included. Any
    /// thread. The two loads are not one atomic step: read while a park ends, a figure can come out
    /// a little low or high, and a later one may be lower (never by more than that park). The
    /// exporter only ever adds increments, so such a dip is absorbed rather than reported.
    func snapshot() -> (parked: UInt64, busy: UInt64) {
        let now = monotonicNanoseconds()
        let ongoing = since.load(ordering: .relaxed)
        var parked = total.load(ordering: .relaxed)
        if ongoing != 0, now > ongoing { parked &+= now &- ongoing }
        let elapsed = now &- createdAt
        return (parked, elapsed > parked ? elapsed &- parked : 0)
    }
}
