import Synchronization

/// A loop's counters. Loop-only counters are single-writer: `bump` is a relaxed load and store
/// (a plain `mov` on x86, no locked instruction), readable from any thread for snapshots.
final class IOThreadCounters: Sendable {
    let jobsRun = Counter()
    let localEnqueues = Counter()
    let remoteEnqueues = Counter()  // written by producers: atomic add
    let eventfdWakeups = Counter()  // written by producers: atomic add
    let epollWaits = Counter()
    let events = Counter()

    final class Counter: Sendable {
        private let value = Atomic<UInt64>(0)

        /// Single-writer increment (the loop thread only).
        @inline(__always)
        func bump(_ amount: UInt64 = 1) {
            value.store(value.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
        }

        /// Multi-writer increment.
        @inline(__always)
        func add(_ amount: UInt64) {
            value.wrappingAdd(amount, ordering: .relaxed)
        }

        var current: UInt64 { value.load(ordering: .relaxed) }
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

        public var description: String {
            "jobs=\(jobsRun) local=\(localEnqueues) remote=\(remoteEnqueues) wakeups=\(eventfdWakeups) epollWaits=\(epollWaits) events=\(events)"
        }
    }

    /// The loop's counters now. Cheap (six relaxed loads); any thread.
    public var metrics: Metrics {
        Metrics(
            jobsRun: counters.jobsRun.current,
            localEnqueues: counters.localEnqueues.current,
            remoteEnqueues: counters.remoteEnqueues.current,
            eventfdWakeups: counters.eventfdWakeups.current,
            epollWaits: counters.epollWaits.current,
            events: counters.events.current)
    }
}
