import IOPool
import Testing

/// A task of the pool (spawned on it, or a child of one) that awaits the pool's shutdown would
/// wait for itself: it traps, saying so, in both pools.
@Suite(.timeLimit(.minutes(1)))
struct ShutdownCallerTests {
    @Test func aTaskOfThePoolThatShutsItDownTrapsSayingWhy() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let pool = try! IOThreadPool(configuration: .init(threadCount: 1))
            await (try! pool.spawn { await pool.shutdownGracefully() }).value
        }
        let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
        #expect(message.contains("shutdownGracefully() awaited on iopool-1, a thread of the pool it shuts down, would wait for itself"), "\(message)")
    }

    @Test func aChildOfAPoolTaskThatShutsItDownTrapsSayingWhy() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let pool = try! WorkStealingPool(configuration: .init(threadCount: 1))
            await (try! pool.spawn {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await pool.shutdown() }
                }
            }).value
        }
        let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
        #expect(message.contains("shutdown() awaited on a worker of the pool it shuts down would wait for itself"), "\(message)")
    }
}
