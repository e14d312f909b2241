import Foundation
import IOPool
import Synchronization

/// Short tasks keep arriving while K tasks make blocking calls (`usleep` 50 ms in a loop):
/// on WorkStealingPool inside `blocking { }`, on Swift's global executor directly (how Swift code
/// blocks today). Reports how long short tasks wait to start (p50/p99) and how many ran.
enum BlockingBenchmark {
    struct Result: Codable, Sendable {
        var runtime: String
        var blockers: Int
        var shortTasks: Int
        var p50Microseconds: Double
        var p99Microseconds: Double
        var maxMicroseconds: Double
    }

    static let blockMicroseconds: UInt32 = 50_000  // microseconds (usleep): 50 ms
    static let arrivalIntervalMicroseconds: UInt32 = 200

    static func run(kind: BenchRuntime.Kind, threads: Int, blockers: Int, seconds: Double) async throws -> Result {
        let runtime = try BenchRuntime.make(kind, threads: threads)
        let running = BusyFlag()
        var background: [Task<Void, Never>] = []
        for _ in 0..<blockers {
            switch runtime {
            case .pool(let pool):
                background.append(try pool.spawn {
                    while running.isSet {
                        do { try await blocking { _ = usleep(blockMicroseconds) } } catch { break }  // cancelled
                    }
                })
            case .global:
                background.append(Task.detached {
                    while running.isSet {
                        usleep(blockMicroseconds)  // blocks a cooperative thread for 50 ms
                        await Task.yield()  // then lets others in, as a task doing one blocking call at a time would
                    }
                })
            case .workStealingPreference, .floor:
                preconditionFailure("the blocking benchmark compares WorkStealingPool with the global executor")
            }
        }
        // Short tasks are spawned from a plain thread, so the spawner itself is never starved.
        let latencies = LatencyLog()
        let spawner = Thread {
            let end = now() + UInt64(seconds * 1e9)
            while now() < end {
                let spawned = now()
                runtime.spawnRemote {
                    var x: UInt64 = spawned
                    for i in 0..<500 { x = x &* 6364136223846793005 &+ UInt64(i) }  // a few µs of work
                    let waited = now() - spawned
                    if x != 0 { latencies.append(waited) }
                }
                usleep(arrivalIntervalMicroseconds)
            }
        }
        spawner.start()
        try await Task.sleep(for: .seconds(seconds + 0.2))
        while !spawner.isFinished { try await Task.sleep(for: .milliseconds(10)) }
        // Let the short tasks spawned last finish (the global executor may be starved for a while).
        try await Task.sleep(for: .milliseconds(200))
        running.clear()
        for task in background { await task.value }
        await runtime.shutdownGracefully()
        let sorted = latencies.sorted
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p / 100))]) / 1000
        }
        return Result(
            runtime: kind.rawValue, blockers: blockers, shortTasks: sorted.count,
            p50Microseconds: percentile(50), p99Microseconds: percentile(99), maxMicroseconds: Double(sorted.last ?? 0) / 1000)
    }
}

/// Start delays of the short tasks, from many threads.
final class LatencyLog: Sendable {
    private let values = Mutex<[UInt64]>([])
    func append(_ value: UInt64) { values.withLock { $0.append(value) } }
    var sorted: [UInt64] { values.withLock { $0 }.sorted() }
}
