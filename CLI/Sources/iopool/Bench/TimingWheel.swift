/// A hierarchical timing wheel after tokio's: `levelCount` levels of 64 slots; a level-0 slot is
/// one tick (1 ms here), a level-n slot 64^n ticks. A timer sits at the level of the highest
/// 6-bit group in which its deadline differs from `elapsed`, in the slot its deadline has there;
/// when time reaches a slot of a higher level, its timers move down (at most once per level) or
/// fire. The first occupied level holds the earliest timers, since a timer is only at level n if
/// it is not within the current level-(n-1) span.
///
/// Entries live in a slab (`entries`, with a free list) and are linked into their slot's list by
/// index, so insert and cancel are O(1) with no allocation once the slab has grown. A `Handle`
/// carries a generation, so cancelling a timer that already fired (its slab entry reused) is a
/// no-op. Timers of the same tick fire in no particular order.
struct TimingWheel {
    static let levelCount = 6
    static let slotBits = 6
    static let slotsPerLevel = 1 << slotBits
    /// The farthest a deadline may be from `elapsed`; later ones are clamped (tokio does too).
    static let maxSpan: UInt64 = (1 << UInt64(levelCount * slotBits)) - 1

    struct Handle {
        fileprivate let index: Int32
        fileprivate let generation: UInt32
    }

    private struct Entry {
        var deadline: UInt64
        var payload: UInt
        var previous: Int32
        var next: Int32
        var generation: UInt32
        /// level * 64 + slot while scheduled, -1 while free.
        var bucket: Int16
    }

    private var entries: [Entry] = []
    private var freeHead: Int32 = -1
    private var heads = [Int32](repeating: -1, count: levelCount * slotsPerLevel)
    private var occupied = [UInt64](repeating: 0, count: levelCount)
    /// The tick up to which time has been processed.
    private(set) var elapsed: UInt64 = 0
    private(set) var count = 0

    /// Bytes held allocated: the slab's capacity plus the slot heads and masks.
    var reservedBytes: Int {
        entries.capacity * MemoryLayout<Entry>.stride + heads.capacity * 4 + occupied.capacity * 8
    }

    /// Schedules `payload` at tick `deadline` (a past deadline fires on the next `poll`).
    mutating func insert(deadline: UInt64, payload: UInt) -> Handle {
        let index: Int32
        if freeHead >= 0 {
            index = freeHead
            freeHead = entries[Int(index)].next
            entries[Int(index)].payload = payload
        } else {
            index = Int32(entries.count)
            entries.append(Entry(deadline: 0, payload: payload, previous: -1, next: -1, generation: 0, bucket: -1))
        }
        entries[Int(index)].deadline = min(max(deadline, elapsed), elapsed + Self.maxSpan)
        link(index)
        count += 1
        return Handle(index: index, generation: entries[Int(index)].generation)
    }

    /// Removes the timer; returns its payload, or nil if it already fired or was cancelled.
    mutating func cancel(_ handle: Handle) -> UInt? {
        let index = Int(handle.index)
        guard index < entries.count, entries[index].generation == handle.generation, entries[index].bucket >= 0 else { return nil }
        unlink(handle.index)
        let payload = entries[index].payload
        release(handle.index)
        return payload
    }

    /// Advances time to `now`, calling `fire(tick, payload)` for every timer due, in tick order.
    mutating func poll(now: UInt64, _ fire: (UInt64, UInt) -> Void) {
        while let (level, slot, slotStart) = nextExpiration(), slotStart <= now {
            let bucket = level * Self.slotsPerLevel + slot
            var index = heads[bucket]
            heads[bucket] = -1
            occupied[level] &= ~(1 << UInt64(slot))
            elapsed = slotStart
            while index >= 0 {
                let next = entries[Int(index)].next
                let deadline = entries[Int(index)].deadline
                if deadline <= slotStart {
                    let payload = entries[Int(index)].payload
                    release(index)
                    fire(deadline, payload)
                } else {
                    link(index)  // cascades to a lower level, relative to the new `elapsed`
                }
                index = next
            }
        }
        elapsed = max(elapsed, now)
    }

    /// The earliest occupied slot: (level, slot, the tick at which it starts).
    private func nextExpiration() -> (Int, Int, UInt64)? {
        for level in 0..<Self.levelCount where occupied[level] != 0 {
            let shift = UInt64(level * Self.slotBits)
            let levelRange: UInt64 = 1 << (shift + UInt64(Self.slotBits))
            let nowSlot = Int((elapsed >> shift) & UInt64(Self.slotsPerLevel - 1))
            let mask = occupied[level]
            let rotated = nowSlot == 0 ? mask : (mask >> UInt64(nowSlot)) | (mask << UInt64(64 - nowSlot))
            let slot = (nowSlot + rotated.trailingZeroBitCount) & (Self.slotsPerLevel - 1)
            var start = (elapsed & ~(levelRange - 1)) + (UInt64(slot) << shift)
            // At level 0 the current slot is due now. Above it, a slot at or before `elapsed`'s own
            // is in the next turn of the level (only clamped, far timers get there).
            if level > 0 ? start <= elapsed : slot < nowSlot { start += levelRange }
            return (level, slot, start)
        }
        return nil
    }

    private mutating func link(_ index: Int32) {
        let deadline = entries[Int(index)].deadline
        let significant = 63 - ((elapsed ^ deadline) | UInt64(Self.slotsPerLevel - 1)).leadingZeroBitCount
        let level = min(significant / Self.slotBits, Self.levelCount - 1)
        let slot = Int((deadline >> UInt64(level * Self.slotBits)) & UInt64(Self.slotsPerLevel - 1))
        let bucket = level * Self.slotsPerLevel + slot
        let head = heads[bucket]
        entries[Int(index)].bucket = Int16(bucket)
        entries[Int(index)].previous = -1
        entries[Int(index)].next = head
        if head >= 0 { entries[Int(head)].previous = index }
        heads[bucket] = index
        occupied[level] |= 1 << UInt64(slot)
    }

    private mutating func unlink(_ index: Int32) {
        let entry = entries[Int(index)]
        let bucket = Int(entry.bucket)
        if entry.previous >= 0 {
            entries[Int(entry.previous)].next = entry.next
        } else {
            heads[bucket] = entry.next
            if entry.next < 0 { occupied[bucket / Self.slotsPerLevel] &= ~(1 << UInt64(bucket % Self.slotsPerLevel)) }
        }
        if entry.next >= 0 { entries[Int(entry.next)].previous = entry.previous }
    }

    private mutating func release(_ index: Int32) {
        entries[Int(index)].bucket = -1
        entries[Int(index)].generation &+= 1
        entries[Int(index)].next = freeHead
        freeHead = index
        count -= 1
    }
}
