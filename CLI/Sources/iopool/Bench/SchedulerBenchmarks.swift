import Glibc
import IOPool
import Synchronization

/// tokio's runtime benchmarks (`benches/rt_multi_threaded.rs`) with tokio's task counts.
enum SchedulerBenchmark: String, CaseIterable, Sendable {
    case spawnManyLocal = "spawn_many_local"
    case spawnManyRemoteIdle = "spawn_many_remote_idle"
    case spawnManyRemoteBusy1 = "spawn_many_remote_busy1"
    case yieldMany = "yield_many"
    case pingPong = "ping_pong"
    case chainedSpawn = "chained_spawn"

    static let spawnCount = 10_000  // NUM_SPAWN
    static let yieldTasks = 200  // TASKS
    static let yieldsPerTask = 1_000  // NUM_YIELD
    static let pings = 1_000  // NUM_PINGS
    static let chainDepth = 1_000  // ITER
    static let stallNanoseconds: UInt64 = 10_000  // STALL_DUR = 10 µs

    /// Runs one iteration on `runtime` and returns its wall time in nanoseconds.
    func runOnce(on runtime: BenchRuntime, threads: Int) async -> UInt64 {
        let start = now()
        switch self {
        case .spawnManyLocal:
            let done = Countdown(SchedulerBenchmark.spawnCount)
            await runtime.spawnRemote {
                for _ in 0..<SchedulerBenchmark.spawnCount {
                    runtime.spawnLocal { done.decrement() }
                }
                await done.wait()
            }.value
        case .spawnManyRemoteIdle:
            var handles: [Task<Void, Never>] = []
            handles.reserveCapacity(SchedulerBenchmark.spawnCount)
            for _ in 0..<SchedulerBenchmark.spawnCount { handles.append(runtime.spawnRemote {}) }
            for handle in handles { await handle.value }
        case .spawnManyRemoteBusy1:
            // Background tasks that keep every worker busy: yield, then stall 10 µs, while the flag is set.
            let busy = BusyFlag()
            var background: [Task<Void, Never>] = []
            for _ in 0..<(2 * threads) {
                background.append(runtime.spawnRemote {
                    while busy.isSet {
                        await Task.yield()
                        stall()
                    }
                })
            }
            let measured = now()
            var handles: [Task<Void, Never>] = []
            handles.reserveCapacity(SchedulerBenchmark.spawnCount)
            for _ in 0..<SchedulerBenchmark.spawnCount { handles.append(runtime.spawnRemote {}) }
            for handle in handles { await handle.value }
            let elapsed = now() - measured
            busy.clear()
            for task in background { await task.value }
            return elapsed
        case .yieldMany:
            let done = Countdown(SchedulerBenchmark.yieldTasks)
            for _ in 0..<SchedulerBenchmark.yieldTasks {
                runtime.spawnRemote {
                    for _ in 0..<SchedulerBenchmark.yieldsPerTask { await Task.yield() }
                    done.decrement()
                }
            }
            await done.wait()
        case .pingPong:
            let done = Countdown(SchedulerBenchmark.pings)
            await runtime.spawnRemote {
                runtime.spawnLocal {
                    for _ in 0..<SchedulerBenchmark.pings {
                        runtime.spawnLocal {
                            let ping = Oneshot<Void>()
                            let pong = Oneshot<Void>()
                            runtime.spawnLocal {
                                await ping.receive()
                                pong.send(())
                            }
                            ping.send(())
                            await pong.receive()
                            done.decrement()
                        }
                    }
                }
                await done.wait()
            }.value
        case .chainedSpawn:
            let done = Oneshot<Void>()
            @Sendable func link(_ remaining: Int) {
                if remaining == 0 {
                    done.send(())
                } else {
                    runtime.spawnLocal { link(remaining - 1) }
                }
            }
            runtime.spawnRemote { link(SchedulerBenchmark.chainDepth) }
            await done.receive()
        }
        return now() - start
    }
}

/// Busy-waits 10 µs yielding the OS thread, as tokio's `stall()`.
private func stall() {
    let end = now() + SchedulerBenchmark.stallNanoseconds
    while now() < end { sched_yield() }
}

func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

final class BusyFlag: Sendable {
    private let flag = Atomic<Bool>(true)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func clear() { flag.store(false, ordering: .relaxed) }
}
