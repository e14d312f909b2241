import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import Synchronization

/// Runs `body(0)`, …, `body(count - 1)` on `count` OS threads that start together (a `Barrier`),
/// and returns their results in index order once all have ended. For the unit tests of the
/// scheduler's mechanisms, which are built for plain threads (a worker is an OS thread), not for
/// tasks. The caller suspends meanwhile instead of blocking in `pthread_join`, so the test does not
/// hold a thread of the Swift concurrency pool, which other tests running in parallel need.
func runOnThreads<Result: Sendable>(_ count: Int, _ body: @escaping @Sendable (_ index: Int) -> Result) async -> [Result] {
    let state = Locked(ThreadsState<Result>(results: Array(repeating: nil, count: count), running: count))
    let start = Barrier(count)
    let threads = (0..<count).map { index in
        try! PThread.start(name: "test-\(index)", stackSize: nil) {
            start.arriveAndWait()
            let result = body(index)
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.results[index] = result
                state.running -= 1
                guard state.running == 0 else { return nil }
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
    await withCheckedContinuation { continuation in
        let done = state.withLock { state -> Bool in
            if state.running == 0 { return true }
            state.waiter = continuation
            return false
        }
        if done { continuation.resume() }
    }
    for thread in threads { thread.join() }  // they have ended, or are about to
    return state.withLock { $0.results.map { $0! } }
}

private struct ThreadsState<Result> {
    var results: [Result?]
    var running: Int
    var waiter: CheckedContinuation<Void, Never>? = nil
}

/// The jobs of `expected` that `jobs` lacks, and those it holds more than once (at most 10 of
/// each, so that a failure message stays readable).
func exactlyOnce(_ jobs: [UInt], expected: ClosedRange<UInt>) -> (missing: [UInt], duplicated: [UInt]) {
    var seen = [UInt8](repeating: 0, count: expected.count)
    var duplicated: [UInt] = []
    for job in jobs {
        guard expected.contains(job) else {
            duplicated.append(job)  // not a job of ours at all
            continue
        }
        let slot = Int(job - expected.lowerBound)
        if seen[slot] > 0, duplicated.count < 10 { duplicated.append(job) }
        seen[slot] = 1
    }
    let missing = expected.lazy.filter { seen[Int($0 - expected.lowerBound)] == 0 }.prefix(10)
    return (Array(missing), duplicated)
}

/// A flag that escaping closures can share (an `Atomic` itself cannot be captured).
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    init() {}
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// CLOCK_MONOTONIC nanoseconds `seconds` from now: the hang guard of a thread's loop.
func hangGuard(seconds: UInt64) -> UInt64 {
    monotonicNanoseconds() + seconds * 1_000_000_000
}
