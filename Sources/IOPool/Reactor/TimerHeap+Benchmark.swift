/// `TimerHeap` for `iopool bench timers`, behind non-generic entry points.
///
/// The benchmark lives in another module: called from there, the generic `TimerHeap` would run
/// unspecialized (metadata and witness calls on every comparison), several times slower than the
/// specialized code the loops run. Each method here is compiled, specialized, in this module, so
/// the benchmark pays one plain call per operation and measures the heap as the loops use it
/// (reserve, then insert: what a sleep does). The payload is a word, as the loops' continuations
/// are. Not API.
package struct BenchmarkTimerHeap {
    package struct Handle {
        fileprivate let id: TimerHeap<UInt>.ID
    }

    private var heap = TimerHeap<UInt>()

    package init() {}

    package var count: Int { heap.count }

    /// Bytes held allocated (see `TimerHeap.reservedBytes`).
    package var reservedBytes: Int { heap.reservedBytes }

    package mutating func insert(deadline: UInt64, payload: UInt) -> Handle {
        let id = heap.reserve()
        heap.insert(id, deadline: deadline, payload)
        return Handle(id: id)
    }

    package mutating func remove(_ handle: Handle) -> UInt? {
        heap.remove(handle.id)
    }

    package mutating func popDue(now: UInt64) -> UInt? {
        heap.popDue(now: now)
    }
}
