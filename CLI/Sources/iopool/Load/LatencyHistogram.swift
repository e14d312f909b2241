/// A log-linear latency histogram (the HdrHistogram layout): values in nanoseconds are bucketed by
/// their power of two, each power split into `subBuckets` linear steps, so every recorded value is
/// kept within 1/`subBuckets` (about 1.6%) of its true value, over the whole range, in a fixed
/// 4,096 counters. Recording is a few integer operations and no allocation.
struct LatencyHistogram: Sendable {
    /// Linear steps per power of two: 64 gives 1.6% relative precision.
    static let subBuckets = 64
    private static let subBucketBits = 6
    private var counts = [UInt64](repeating: 0, count: 64 * subBuckets)
    private(set) var count: UInt64 = 0
    private(set) var max: UInt64 = 0
    private(set) var min: UInt64 = .max

    mutating func record(nanoseconds value: UInt64) {
        counts[Self.index(of: value)] += 1
        count += 1
        if value > max { max = value }
        if value < min { min = value }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        count += other.count
        max = Swift.max(max, other.max)
        min = Swift.min(min, other.min)
    }

    /// The value at `percentile` (0...100): the upper edge of the bucket holding it, capped at the
    /// largest value recorded; 0 when empty.
    func value(atPercentile percentile: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((percentile / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += bucketCount
            if seen >= rank { return Swift.min(Self.upperEdge(of: index), max) }
        }
        return max
    }

    /// Values below `subBuckets` get a bucket each; above, the top `subBucketBits` bits after the
    /// leading one select the step within the power of two.
    static func index(of value: UInt64) -> Int {
        if value < UInt64(subBuckets) { return Int(value) }
        let magnitude = 63 - value.leadingZeroBitCount  // >= subBucketBits
        let shift = magnitude - subBucketBits
        let step = Int((value >> UInt64(shift)) & UInt64(subBuckets - 1))
        return (shift + 1) * subBuckets + step
    }

    static func upperEdge(of index: Int) -> UInt64 {
        if index < subBuckets { return UInt64(index) }
        let shift = index / subBuckets - 1
        let step = UInt64(index % subBuckets)
        let lower = (UInt64(subBuckets) + step) << UInt64(shift)
        return lower + (UInt64(1) << UInt64(shift)) - 1
    }
}
