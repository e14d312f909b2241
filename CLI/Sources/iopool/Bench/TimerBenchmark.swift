import Glibc
@_spi(Benchmarks) import IOPool  // SplitMix64, BenchmarkTimerHeap

// The workload of `iopool bench timers`: the library's timer heap against a hierarchical timing wheel, on what a
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
// `BenchmarkTimerHeap`, so that it runs specialized, as in the loops. The wheel (`TimingWheel`) is written
// compactly, after tokio's (tokio/src/runtime/time/wheel): 6 levels of 64 slots, 1 ms per level-0
// slot (64^6 ms, about 2.2 years, of range), a 64-bit occupancy mask per level, entries in a slab
// (an array with a free list) linked into their slot's list, so insert and cancel are O(1) and
// firing cascades each timer down at most once per level.

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
