import Glibc
@testable import IOPool
import Synchronization
import Testing

/// `Idle` in isolation: the wake-up policy (one sleeper per new job, nobody while someone
/// searches, at most half the workers searching) and its counts, single-threaded step by step,
/// then under concurrent notifiers and parkers.
@Suite struct IdleTests {
    @Test func aNotificationWakesOneSleeperThatStartsOutSearching() throws {
        let idle = Idle(workerCount: 4)
        #expect(idle.unparkedCount == 0)
        #expect(idle.searchingCount == 0)
        let first = try #require(idle.workerToNotify())
        #expect(first.index == 0, "workers are woken in index order")
        #expect(first.needsThread, "threads start lazily, on the first wake-up")
        #expect(idle.unparkedCount == 1)
        #expect(idle.searchingCount == 1)
        #expect(!idle.isParked(0))
        #expect(idle.isParked(1))
    }

    /// While a worker searches, new work wakes nobody: the searcher will find it. When the last
    /// searcher finds work it says so, and the pool wakes the next sleeper then.
    @Test func nobodyIsWokenWhileSomeoneSearches() throws {
        let idle = Idle(workerCount: 4)
        _ = try #require(idle.workerToNotify())
        #expect(idle.workerToNotify() == nil)
        #expect(idle.workerToNotify() == nil)
        #expect(idle.unparkedCount == 1, "the refused notifications changed nothing")
        #expect(idle.searchingCount == 1)
        #expect(idle.transitionFromSearching(), "the last searcher leaves searching")
        #expect(idle.searchingCount == 0)
        let second = try #require(idle.workerToNotify())
        #expect(second.index == 1)
        #expect(second.needsThread)
        #expect(idle.unparkedCount == 2)
        #expect(idle.searchingCount == 1)
    }

    /// Once every worker runs, a notification finds no sleeper.
    @Test func nobodyIsWokenWhenEveryWorkerRuns() {
        let idle = Idle(workerCount: 2)
        for _ in 0..<2 {
            #expect(idle.workerToNotify() != nil)
            _ = idle.transitionFromSearching()
        }
        #expect(idle.unparkedCount == 2)
        #expect(idle.workerToNotify() == nil)
        #expect(idle.searchingCount == 0)
    }

    /// At most half the workers search at once.
    @Test func atMostHalfTheWorkersSearch() {
        let idle = Idle(workerCount: 4)
        for _ in 0..<4 {
            _ = idle.workerToNotify()
            _ = idle.transitionFromSearching()
        }
        #expect(idle.unparkedCount == 4)
        #expect(idle.transitionToSearching())
        #expect(idle.transitionToSearching())
        #expect(!idle.transitionToSearching(), "a third searcher of four workers is refused")
        #expect(idle.searchingCount == 2)
        #expect(!idle.transitionFromSearching(), "not the last searcher")
        #expect(idle.transitionFromSearching(), "the last searcher")
        #expect(idle.searchingCount == 0)
    }

    /// Parking counts the worker out (and out of searching, if it searched), makes it a sleeper
    /// again, and tells the last searcher to re-check the queues. A parked worker keeps its thread.
    @Test func parkingMakesAWorkerASleeperAgain() throws {
        let idle = Idle(workerCount: 3)
        let a = try #require(idle.workerToNotify())
        _ = idle.transitionFromSearching()
        let b = try #require(idle.workerToNotify())  // searching
        #expect(idle.unparkedCount == 2)
        #expect(idle.searchingCount == 1)

        #expect(!idle.transitionToParked(a.index, isSearching: false), "not a searcher")
        #expect(idle.unparkedCount == 1)
        #expect(idle.isParked(a.index))
        #expect(idle.transitionToParked(b.index, isSearching: true), "the last searcher must re-check")
        #expect(idle.unparkedCount == 0)
        #expect(idle.searchingCount == 0)

        // The most recently parked worker is woken first, and its thread exists already.
        let again = try #require(idle.workerToNotify())
        #expect(again.index == b.index)
        #expect(!again.needsThread)
    }

    /// A worker woken by I/O (not by a notification) leaves the sleepers once, without searching.
    @Test func aWorkerWokenWithoutNotificationCountsOnce() throws {
        let idle = Idle(workerCount: 2)
        let worker = try #require(idle.workerToNotify())
        _ = idle.transitionFromSearching()
        _ = idle.transitionToParked(worker.index, isSearching: false)
        #expect(idle.unparkedCount == 0)
        #expect(idle.unparkWorker(worker.index))
        #expect(idle.unparkedCount == 1)
        #expect(idle.searchingCount == 0)
        #expect(!idle.isParked(worker.index))
        #expect(!idle.unparkWorker(worker.index), "already out")
        #expect(idle.unparkedCount == 1)
    }

    /// A worker whose thread could not start goes back to the sleepers, at the far end of the
    /// line: the next notification tries another sleeper first (one that may have a thread), and
    /// the refused worker's thread is tried again once its turn comes.
    @Test func aFailedThreadStartLeavesTheWorkerASleeperWithoutThread() throws {
        let idle = Idle(workerCount: 2)
        let worker = try #require(idle.workerToNotify())
        idle.threadStartFailed(worker.index)
        #expect(idle.unparkedCount == 0)
        #expect(idle.searchingCount == 0)
        #expect(idle.isParked(worker.index))
        let other = try #require(idle.workerToNotify())
        #expect(other.index != worker.index, "the refused worker was chosen again before the others")
        idle.threadStartFailed(other.index)
        let retry = try #require(idle.workerToNotify())
        #expect(retry.index == worker.index)
        #expect(retry.needsThread)
    }

    /// Four threads notify, stop searching and park, over and over, on a four-worker `Idle`: no
    /// worker is ever handed to two notifiers at once, and when they are done every count is back
    /// at zero and every worker is a sleeper again, each exactly once.
    @Test func concurrentNotifyAndParkKeepTheCountsRight() async throws {
        let workerCount = 4
        let idle = Idle(workerCount: workerCount)
        let busy = (0..<workerCount).map { _ in Claim() }
        let doubleWakes = Counter()
        let wakes = Counter()
        _ = await runOnThreads(4) { thread in
            for round in 0..<20_000 {
                guard let (index, _) = idle.workerToNotify() else {
                    if round % 64 == 0 { sched_yield() }
                    continue
                }
                wakes.increment()
                if !busy[index].acquire() { doubleWakes.increment() }
                // Sometimes the woken worker finds work (leaves searching) before parking, sometimes
                // it parks while still searching.
                let searching = (round + thread) % 3 != 0
                if !searching { _ = idle.transitionFromSearching() }
                busy[index].release()
                _ = idle.transitionToParked(index, isSearching: searching)
            }
        }
        #expect(doubleWakes.count == 0)
        #expect(wakes.count > 0)
        #expect(idle.unparkedCount == 0)
        #expect(idle.searchingCount == 0)
        for index in 0..<workerCount { #expect(idle.isParked(index)) }
        var woken: Set<Int> = []
        for _ in 0..<workerCount {
            let worker = try #require(idle.workerToNotify())
            woken.insert(worker.index)
            _ = idle.transitionFromSearching()
        }
        #expect(woken == Set(0..<workerCount), "each worker was a sleeper exactly once")
        #expect(idle.workerToNotify() == nil)
    }
}

/// A try-lock: `acquire()` is true for exactly one caller until `release()`.
private final class Claim: Sendable {
    private let held = Atomic<Bool>(false)
    init() {}
    func acquire() -> Bool { held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged }
    func release() { held.store(false, ordering: .releasing) }
}
