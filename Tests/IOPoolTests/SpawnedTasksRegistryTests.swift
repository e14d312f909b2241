@_spi(IOPoolSupport) @testable import IOPool
import Testing

/// `SpawnedTasks`: every running task started by `spawn` is linked into one of its locked
/// intrusive lists, which an immediate shutdown scans to cancel the pool's tasks, and which a
/// task's first wait on a socket searches for the task's own cancellation scope. These tests start
/// and end tasks on every thread at once (links and unlinks racing on shared lists), and put many
/// tasks in the same lists, so that a lost node, a broken link or a lookup that returns another
/// task's scope shows as a task left uncancelled (a hung shutdown: the time limit), a wrong task
/// cancelled, or a crash. CI runs them under ThreadSanitizer too.
@Suite(.timeLimit(.minutes(2))) struct SpawnedTasksRegistryTests {
    enum Pool: String, CaseIterable, CustomTestStringConvertible {
        case io, stealing
        var testDescription: String { rawValue }
    }

    /// A pool of either kind behind one pair of closures.
    struct AnyPool {
        let spawn: (@escaping @Sendable () async -> Void) throws -> Task<Void, Never>
        let liveTaskCount: () -> Int
        let shutdown: () async -> Void

        init(_ kind: Pool) throws {
            switch kind {
            case .io:
                let pool = try IOThreadPool(configuration: .init(threadCount: 2))
                spawn = { operation in try pool.spawn(operation) }
                liveTaskCount = { pool.liveTaskCount }
                shutdown = { await pool.shutdown() }
            case .stealing:
                let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
                spawn = { operation in try pool.spawn(operation) }
                liveTaskCount = { pool.liveTaskCount }
                shutdown = { await pool.shutdown() }
            }
        }
    }

    /// Four tasks spawn 1,000 short tasks each (started and ended on both threads while the others
    /// link and unlink) and 100 that wait until cancelled; `shutdown()` then cancels all 400.
    @Test(arguments: Pool.allCases)
    func anImmediateShutdownCancelsEveryTaskWhileOthersStartAndEnd(_ kind: Pool) async throws {
        let pool = try AnyPool(kind)
        let shortEnded = Counter(), waiting = Counter(), cancelled = Counter()
        for _ in 0..<4 {
            _ = try pool.spawn {
                for index in 0..<1_000 {
                    // The free `spawn`: onto the calling task's own pool.
                    spawn { shortEnded.increment() }
                    guard index % 10 == 0 else { continue }
                    spawn {
                        waiting.increment()
                        let (stream, _) = AsyncStream.makeStream(of: Int.self)
                        for await _ in stream {}
                        if Task.isCancelled { cancelled.increment() }
                    }
                }
            }
        }
        while shortEnded.count < 4_000 || waiting.count < 400 { try await Task.sleep(for: .milliseconds(1)) }
        await pool.shutdown()
        #expect(cancelled.count == 400)
        #expect(pool.liveTaskCount() == 0)
    }

    /// 600 tasks wait to read, each on its own socket pair (many share a list); every other one is
    /// cancelled through its handle. Exactly those end with `CancellationError`: each wait found its
    /// own task's scope, not a neighbour's. The others then read the byte their peer sends.
    @Test(arguments: Pool.allCases)
    func eachWaitFindsItsOwnTasksScope(_ kind: Pool) async throws {
        let pool = try AnyPool(kind)
        let count = 600
        let started = Counter(), cancelled = Counter(), read = Counter(), failed = Counter()
        var pairs: [(UnixStream, UnixStream)] = []
        var tasks: [Task<Void, Never>] = []
        for _ in 0..<count {
            let (mine, peer) = try UnixStream.pair()
            pairs.append((mine, peer))
            tasks.append(try pool.spawn {
                started.increment()
                do {
                    var bytes: [UInt8] = []
                    let n = try await mine.read(appendingTo: &bytes, maxBytes: 1)
                    if n == 1, bytes == [42] { read.increment() } else { failed.increment() }
                } catch is CancellationError {
                    cancelled.increment()
                } catch {
                    failed.increment()
                }
            })
        }
        while started.count < count { try await Task.sleep(for: .milliseconds(1)) }
        // Let the reads reach their waits (they may still be on their way: a cancellation before
        // the wait is seen by it too, so this only makes the test exercise the waiting case more).
        try await Task.sleep(for: .milliseconds(50))
        for index in stride(from: 0, to: count, by: 2) { tasks[index].cancel() }
        for index in stride(from: 1, to: count, by: 2) { try await pairs[index].1.write([42]) }
        for task in tasks { await task.value }
        #expect(cancelled.count == count / 2)
        #expect(read.count == count / 2)
        #expect(failed.count == 0)
        for (mine, peer) in pairs {
            mine.close()
            peer.close()
        }
        await pool.shutdown()
    }
}
