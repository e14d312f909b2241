import ArgumentParser
import Glibc
@_spi(Benchmarks) import IOPool  // SplitMix64, BenchmarkTimerHeap

// `iopool bench timers`: the library's timer heap against a hierarchical timing wheel, on what a
// server does with timers (issue 4: "a heap or a hierarchical wheel: measure").
//
// The scenario, for N timers: insert N with random deadlines in 0-60 s (timeouts armed), cancel
// most of them in random order (the operations finished in time), then fire the rest in deadline
// order (the timeouts that expired). Both structures get the same deadlines, the same cancel
// order, and are checked: exactly the timers not cancelled fire, in deadline order (the wheel at
// its 1 ms resolution), each once.
//
// The heap is the library's `TimerHeap` as the loops use it: a binary min-heap whose timers keep
// their position in a slab, so cancellation is O(log n) and eager; reached through
// `BenchmarkTimerHeap`, so that it runs specialized, as in the loops. The wheel is written here,
// compactly, after tokio's (tokio/src/runtime/time/wheel): 6 levels of 64 slots, 1 ms per level-0
// slot (64^6 ms, about 2.2 years, of range), a 64-bit occupancy mask per level, entries in a slab
// (an array with a free list) linked into their slot's list, so insert and cancel are O(1) and
// firing cascades each timer down at most once per level.

extension BenchCommand {
    struct Timers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Timer heap (the library's) vs a hierarchical timing wheel: insert, cancel most, fire the rest.",
            discussion: """
                For each N: insert N timers with random deadlines in 0-60 s, cancel --cancel-percent of them in \
                random order, fire the rest in order. Prints ns per insert, per cancel and per fire (median of \
                --repetitions runs) and the bytes each structure holds allocated at its peak (after the inserts).
                """)

        // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
        @Option(parsing: .unconditional, help: "Timer counts to measure, comma-separated.")
        var sizes = "10000,100000,1000000"
        @Option(parsing: .unconditional, help: "Percent of the timers cancelled before they fire.")
        var cancelPercent = 90
        @Option(parsing: .unconditional, help: "Runs per size and structure (the median is reported).")
        var repetitions = 5
        @Option(parsing: .unconditional, help: "Seed of the deadlines and the cancel order (0 or more).")
        var seed = 2026

        func validate() throws {
            try OptionRules.check(cancelPercent, "--cancel-percent", in: 0...100)
            try OptionRules.checkCount(repetitions, "--repetitions")
            try OptionRules.check(seed, "--seed", in: 0...Int.max)
            _ = try parseList(sizes, "--sizes")
        }

        func run() async throws {
            printLine("timers: insert N (deadlines uniform in 0-60 s), cancel \(cancelPercent)% in random order, fire the rest")
            printLine("median of \(repetitions) runs; ns per operation; peak = bytes allocated by the structure after the inserts")
            printLine(
                pad("N", 10) + pad("structure", 10) + pad("insert ns", 11) + pad("cancel ns", 11) + pad("fire ns", 11)
                    + pad("total ms", 10) + pad("peak MiB", 10) + "bytes/timer")
            var generator = SplitMix64(seed: UInt64(seed))
            for count in try parseList(sizes, "--sizes") {
                var runs: [[TimerRun]] = [[], []]
                for repetition in 0..<repetitions {
                    let workload = TimerWorkload(count: count, cancelPercent: cancelPercent, using: &generator)
                    // Rotate which goes first, so none always runs on a warm (or cold) allocator.
                    let order = [0, 1].map { ($0 + repetition) % 2 }
                    for structure in order {
                        switch structure {
                        case 0: runs[0].append(try workload.runHeap())
                        default: runs[1].append(try workload.runWheel())
                        }
                    }
                }
                for (name, runs) in zip(["heap", "wheel"], runs) {
                    let median = TimerRun.median(runs)
                    printLine(
                        pad("\(count)", 10) + pad(name, 10) + pad(format1(median.insertNanoseconds), 11)
                            + pad(format1(median.cancelNanoseconds), 11) + pad(format1(median.fireNanoseconds), 11)
                            + pad(format1(median.totalMilliseconds), 10)
                            + pad(format2(Double(median.peakBytes) / 1_048_576), 10)
                            + format1(Double(median.peakBytes) / Double(count)))
                }
            }
        }
    }
}

/// One scenario's inputs: deadlines (ns) and which timers are cancelled, in which order.
struct TimerWorkload {
    static let horizonNanoseconds: UInt64 = 60_000_000_000

    let deadlines: [UInt64]
    /// Indices of the cancelled timers, in cancel order.
    let cancelled: [Int]
    /// Sum of the indices that must fire (a checksum of "exactly the others fire").
    let expectedFiredSum: Int

    init(count: Int, cancelPercent: Int, using generator: inout SplitMix64) {
        deadlines = (0..<count).map { _ in 1 + generator.next() % Self.horizonNanoseconds }
        var order = Array(0..<count)
        for index in stride(from: count - 1, to: 0, by: -1) {  // Fisher-Yates
            order.swapAt(index, Int(generator.next() % UInt64(index + 1)))
        }
        cancelled = Array(order.prefix(count * cancelPercent / 100))
        expectedFiredSum = count * (count - 1) / 2 - cancelled.reduce(0, +)
    }

    func runHeap() throws -> TimerRun {
        var heap = BenchmarkTimerHeap()
        var handles: [BenchmarkTimerHeap.Handle] = []
        handles.reserveCapacity(deadlines.count)  // the caller's, as the wheel's handles: not counted
        let start = now()
        for (index, deadline) in deadlines.enumerated() {
            handles.append(heap.insert(deadline: deadline, payload: UInt(index)))
        }
        let inserted = now()
        let peak = heap.reservedBytes
        for index in cancelled {
            guard heap.remove(handles[index]) == UInt(index) else { throw TimerCheckFailure("heap: cancel of \(index) found nothing") }
        }
        let cancelledAt = now()
        var fired = 0
        var firedSum = 0
        var last: UInt64 = 0
        while let payload = heap.popDue(now: .max) {
            let deadline = deadlines[Int(payload)]
            if deadline < last { throw TimerCheckFailure("heap: fired \(deadline) after \(last)") }
            last = deadline
            fired += 1
            firedSum &+= Int(payload)
        }
        let end = now()
        try check("heap", fired: fired, firedSum: firedSum)
        return TimerRun(
            count: deadlines.count, cancels: cancelled.count, fires: fired, insert: inserted - start,
            cancel: cancelledAt - inserted, fire: end - cancelledAt, peakBytes: peak)
    }

    func runWheel() throws -> TimerRun {
        var wheel = TimingWheel()
        var handles: [TimingWheel.Handle] = []
        handles.reserveCapacity(deadlines.count)  // the caller's, as the heap's ids: not counted
        let start = now()
        for (index, deadline) in deadlines.enumerated() {
            // Rounded up to the wheel's 1 ms tick: a timer never fires early.
            handles.append(wheel.insert(deadline: (deadline + 999_999) / 1_000_000, payload: UInt(index)))
        }
        let inserted = now()
        let peak = wheel.reservedBytes
        for index in cancelled {
            guard wheel.cancel(handles[index]) == UInt(index) else { throw TimerCheckFailure("wheel: cancel of \(index) found nothing") }
        }
        let cancelledAt = now()
        var fired = 0
        var firedSum = 0
        var last: UInt64 = 0
        var outOfOrder: UInt64?
        wheel.poll(now: Self.horizonNanoseconds / 1_000_000 + 1) { tick, payload in
            if tick < last { outOfOrder = tick }
            last = tick
            fired += 1
            firedSum &+= Int(payload)
        }
        let end = now()
        if let outOfOrder { throw TimerCheckFailure("wheel: fired tick \(outOfOrder) after a later one") }
        try check("wheel", fired: fired, firedSum: firedSum)
        return TimerRun(
            count: deadlines.count, cancels: cancelled.count, fires: fired, insert: inserted - start,
            cancel: cancelledAt - inserted, fire: end - cancelledAt, peakBytes: peak)
    }

    private func check(_ name: String, fired: Int, firedSum: Int) throws {
        let expected = deadlines.count - cancelled.count
        guard fired == expected, firedSum == expectedFiredSum else {
            throw TimerCheckFailure("\(name): fired \(fired) timers (index sum \(firedSum)); expected \(expected) (sum \(expectedFiredSum))")
        }
    }
}

/// One measured run: nanoseconds per operation of each phase, and the structure's peak bytes.
struct TimerRun {
    var insertNanoseconds: Double
    var cancelNanoseconds: Double
    var fireNanoseconds: Double
    var totalMilliseconds: Double
    var peakBytes: Int

    init(count: Int, cancels: Int, fires: Int, insert: UInt64, cancel: UInt64, fire: UInt64, peakBytes: Int) {
        insertNanoseconds = Double(insert) / Double(max(count, 1))
        cancelNanoseconds = cancels == 0 ? .nan : Double(cancel) / Double(cancels)
        fireNanoseconds = fires == 0 ? .nan : Double(fire) / Double(fires)
        totalMilliseconds = Double(insert + cancel + fire) / 1e6
        self.peakBytes = peakBytes
    }

    /// The median of each column on its own.
    static func median(_ runs: [TimerRun]) -> TimerRun {
        func mid(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        var result = runs[0]
        result.insertNanoseconds = mid(runs.map(\.insertNanoseconds))
        result.cancelNanoseconds = mid(runs.map(\.cancelNanoseconds))
        result.fireNanoseconds = mid(runs.map(\.fireNanoseconds))
        result.totalMilliseconds = mid(runs.map(\.totalMilliseconds))
        result.peakBytes = runs.map(\.peakBytes).max()!
        return result
    }
}

struct TimerCheckFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

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
