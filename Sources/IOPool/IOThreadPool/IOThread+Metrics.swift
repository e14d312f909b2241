import Synchronization

/// A loop's counters (see `RelaxedCounter`). Loop-only counters are single-writer (`bump`), readable
/// from any thread for snapshots.
final class IOThreadCounters: Sendable {
    let jobsRun = RelaxedCounter()
    let localEnqueues = RelaxedCounter()
    let remoteEnqueues = RelaxedCounter()  // written by producers: atomic add
    let eventfdWakeups = RelaxedCounter()  // written by producers: atomic add
    let epollWaits = RelaxedCounter()
    let events = RelaxedCounter()
    /// `epoll_wait` calls that could block (a timeout other than zero): the loop had nothing to run.
    let parks = RelaxedCounter()
    /// Time blocked in those calls, for the busy time.
    let parkedTime = ParkedTime()
    /// The loop's pending timers, published once per loop turn (the timers are loop-confined).
    let pendingTimers = Gauge()

    /// A level written by one thread, read by any.
    final class Gauge: Sendable {
        private let value = Atomic<Int>(0)

        @inline(__always)
        func set(_ newValue: Int) { value.store(newValue, ordering: .relaxed) }

        var current: Int { value.load(ordering: .relaxed) }
    }
}

extension IOThread {
    /// A point-in-time copy of an ``IOThread``'s counters. Values only grow; subtract two snapshots
    /// to measure an interval.
    public struct Metrics: Sendable, Hashable, CustomStringConvertible {
        /// Jobs the loop ran (task jobs, actor jobs and internal closures).
        public var jobsRun: UInt64
        /// Jobs enqueued from the loop's own thread (no atomics, no wake-up).
        public var localEnqueues: UInt64
        /// Jobs enqueued from other threads through the remote queue.
        public var remoteEnqueues: UInt64
        /// eventfd writes that woke the sleeping loop (at most one per sleep).
        public var eventfdWakeups: UInt64
        /// Calls to `epoll_wait`.
        public var epollWaits: UInt64
        /// I/O readiness events delivered (eventfd wake-ups excluded).
        public var events: UInt64
        /// Calls to `epoll_wait` that could block (the loop had nothing to run): the loop's parks.
        public var parks: UInt64
        /// Nanoseconds the loop has not been parked since the thread was created: running jobs,
        /// polling without blocking, firing timers (tokio's busy duration). Includes the park in
        /// progress, so it keeps growing only while the loop works. Read while a park ends, it can
        /// come out slightly high, and a later snapshot lower by at most that park's length.
        public var busyNanoseconds: UInt64
        /// Nanoseconds the loop has been parked (blocked in `epoll_wait`) since it was created.
        public var parkedNanoseconds: UInt64
        /// Sockets registered with this loop's epoll instance now (a socket registers with the
        /// loop that first awaits it, and leaves at close).
        public var registeredSockets: Int
        /// Sleeps armed on this loop's timers now (`sleep`, `intervals`, timeouts), as of the
        /// loop's last turn.
        public var pendingTimers: Int

        public var description: String {
            "jobs=\(jobsRun) local=\(localEnqueues) remote=\(remoteEnqueues) wakeups=\(eventfdWakeups) epollWaits=\(epollWaits) events=\(events) parks=\(parks) busy=\(busyNanoseconds)ns sockets=\(registeredSockets) timers=\(pendingTimers)"
        }
    }

    /// The loop's counters now. Cheap (relaxed loads and one clock read); any thread.
    public var metrics: Metrics {
        let time = counters.parkedTime.snapshot()
        return Metrics(
            jobsRun: counters.jobsRun.current,
            localEnqueues: counters.localEnqueues.current,
            remoteEnqueues: counters.remoteEnqueues.current,
            eventfdWakeups: counters.eventfdWakeups.current,
            epollWaits: counters.epollWaits.current,
            events: counters.events.current,
            parks: counters.parks.current,
            busyNanoseconds: time.busy,
            parkedNanoseconds: time.parked,
            registeredSockets: reactor.registeredCount,
            pendingTimers: counters.pendingTimers.current)
    }
}
