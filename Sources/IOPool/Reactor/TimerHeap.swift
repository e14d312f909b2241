/// A min-heap of timers ordered by (deadline, id) with O(log n) removal by id.
///
/// Removal is eager: a cancelled timer leaves the heap at once, so a server that starts and
/// cancels a million timeouts does not grow (lazy deletion would keep every cancelled entry until
/// its deadline). Ties fire in insertion order because ids increase.
///
/// Not thread-safe: each loop owns one.
struct TimerHeap<Payload> {
    private struct Entry {
        let deadline: UInt64
        let id: UInt64
        let payload: Payload

        func precedes(_ other: Entry) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : id < other.id
        }
    }

    private var entries: [Entry] = []
    /// id -> index in `entries`.
    private var positions: [UInt64: Int] = [:]

        var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// The earliest deadline, if any.
    var nextDeadline: UInt64? { entries.first?.deadline }

    /// Bytes the heap holds allocated (its capacity, not its count): the entries' array plus an
    /// estimate of the id index (a native Dictionary keeps a power-of-two bucket count at most 3/4
    /// full, 16 bytes and one metadata bit per bucket). For benchmarks.
    var reservedBytes: Int {
        var buckets = 1
        while buckets * 3 / 4 < positions.capacity { buckets *= 2 }
        return entries.capacity * MemoryLayout<Entry>.stride + buckets * (MemoryLayout<(UInt64, Int)>.stride) + buckets / 8
    }

    mutating func insert(id: UInt64, deadline: UInt64, _ payload: Payload) {
        precondition(positions[id] == nil, "timer id \(id) is already scheduled")
        entries.append(Entry(deadline: deadline, id: id, payload: payload))
        positions[id] = entries.count - 1
        siftUp(entries.count - 1)
    }

    /// Removes the timer `id`; returns its payload, or nil if it is not scheduled.
    mutating func remove(id: UInt64) -> Payload? {
        guard let index = positions[id] else { return nil }
        return removeAt(index)
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    mutating func popDue(now: UInt64) -> (id: UInt64, payload: Payload)? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let id = first.id
        return (id, removeAt(0))
    }

    /// Removes every timer, earliest first.
    mutating func removeAll() -> [Payload] {
        let sorted = entries.sorted { $0.precedes($1) }.map(\.payload)
        entries.removeAll()
        positions.removeAll()
        return sorted
    }

    private mutating func removeAt(_ index: Int) -> Payload {
        let removed = entries[index]
        positions[removed.id] = nil
        let last = entries.removeLast()
        if index < entries.count {
            entries[index] = last
            positions[last.id] = index
            siftDown(index)
            siftUp(index)
        }
        return removed.payload
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { return }
            let right = left + 1
            var smallest = left
            if right < entries.count && entries[right].precedes(entries[left]) { smallest = right }
            guard entries[smallest].precedes(entries[parent]) else { return }
            swapAt(parent, smallest)
            parent = smallest
        }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        entries.swapAt(a, b)
        positions[entries[a].id] = a
        positions[entries[b].id] = b
    }
}
