/// A small, fast, seedable random generator (Vigna's SplitMix64), for test data and benchmarks
/// that must see the same numbers on every run (`iopool bench timers`, the timer tests). Not API:
/// SPI (`@_spi(Benchmarks) import IOPool`) because the CLI, which uses it, is another package
/// (CLI/), where `package` declarations are not visible.
@_spi(Benchmarks)
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next number of the sequence. Never fails.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
