/// `TimerHeap` for `iopool bench timers`, behind non-generic entry points.
///
/// The benchmark lives in another module: called from there, the generic `TimerHeap` would run
/// unspecialized (metadata and witness calls on every comparison), several times slower than the
/// specialized code the loops run. Each method here is compiled, specialized, in this module, so
/// the benchmark pays one plain call per operation and measures the heap as the loops use it.
/// The payload is a word, as the loops' continuations are. Not API.
package struct BenchmarkTimerHeap {
    private var heap = TimerHeap<UInt>()

    package init() {}

    package var count: Int { heap.count }

    /// Bytes held allocated (see `TimerHeap.reservedBytes`).
    package var reservedBytes: Int { heap.reservedBytes }

    package mutating func insert(id: UInt64, deadline: UInt64, payload: UInt) {
        heap.insert(id: id, deadline: deadline, payload)
    }

    package mutating func remove(id: UInt64) -> UInt? {
        heap.remove(id: id)
    }

    package mutating func popDue(now: UInt64) -> UInt? {
        heap.popDue(now: now)?.payload
    }
}
