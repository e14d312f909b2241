import Synchronization

/// A statistics counter: relaxed atomics, readable from any thread for a metrics snapshot, ordering
/// nothing else. Used by the loops' counters (`IOThreadCounters`), the workers' and the shared
/// driver's.
///
/// Most counters have one writer (the loop or worker that owns them): `bump` is then a relaxed load
/// and store (a plain `mov` on x86, no locked instruction). Counters that other threads write too
/// use `add`, an atomic add.
final class RelaxedCounter: Sendable {
    private let value = Atomic<UInt64>(0)

    /// Single-writer increment (the owning thread only).
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
