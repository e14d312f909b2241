/// `TimerHeap` for `iopool bench timers`, behind non-generic entry points.
///
/// The benchmark lives in another module: called from there, the generic `TimerHeap` would run
/// unspecialized (metadata and witness calls on every comparison), several times slower than the
/// specialized code the loops run. Each method here is compiled, specialized, in this module, so
/// the benchmark pays one plain call per operation and measures the heap as the loops use it
/// (reserve, then insert: what a sleep does). The payload is a word, as the loops' continuations
/// are. Not API: SPI (`@_spi(Benchmarks) import IOPool`) because the benchmark is in another package
/// (CLI/), where `package` declarations are not visible.
@_spi(Benchmarks)
public struct BenchmarkTimerHeap {
    /// A timer in the heap, for `remove(_:)`; valid until the timer is removed or popped.
    public struct Handle {
        fileprivate let id: TimerHeap<UInt>.ID
    }

    private var heap = TimerHeap<UInt>()

    /// An empty heap.
    public init() {}

    /// Timers in the heap.
    public var count: Int { heap.count }

    /// Bytes held allocated (see `TimerHeap.reservedBytes`).
    public var reservedBytes: Int { heap.reservedBytes }

    /// Adds a timer due at `deadline` (nanoseconds, the caller's clock) carrying `payload`.
    public mutating func insert(deadline: UInt64, payload: UInt) -> Handle {
        let id = heap.reserve()
        heap.insert(id, deadline: deadline, payload)
        return Handle(id: id)
    }

    /// Removes the timer `handle` names; its payload, or nil if it was already removed or popped.
    public mutating func remove(_ handle: Handle) -> UInt? {
        heap.remove(handle.id)
    }

    /// Removes and returns the payload of the earliest timer if it is due at `now` or earlier, else nil.
    public mutating func popDue(now: UInt64) -> UInt? {
        heap.popDue(now: now)
    }
}
