import Glibc
@testable import IOPool
import Testing

/// `InjectQueue` in isolation: FIFO, batch pops, close, and concurrent producers and consumers.
@Suite struct InjectQueueTests {
    @Test func popsInPushOrder() {
        let queue = InjectQueue()
        #expect(queue.isEmpty)
        #expect(queue.pop() == nil)
        for job in UInt(1)...5 { #expect(queue.push(job)) }
        queue.push(contentsOf: [6, 7, 8])
        #expect(queue.count == 8)
        #expect(!queue.isEmpty)
        #expect((0..<8).compactMap { _ in queue.pop() } == Array(1...8))
        #expect(queue.isEmpty)
        #expect(queue.pop() == nil)
    }

    @Test func aBatchPopTakesTheOldestJobsUpToItsLimit() {
        let queue = InjectQueue()
        queue.push(contentsOf: Array(1...10))
        #expect(queue.pop(upTo: 0) == [])
        #expect(queue.pop(upTo: -1) == [])
        #expect(queue.pop(upTo: 3) == [1, 2, 3])
        #expect(queue.count == 7)
        #expect(queue.pop() == 4)
        #expect(queue.pop(upTo: 100) == Array(5...10), "a limit above the count takes everything")
        #expect(queue.count == 0)
        #expect(queue.pop(upTo: 5) == [])
    }

    /// `close()` hands back what was queued, in order, and from then on the queue is empty and
    /// refuses pushes (the pool then forwards the job to the default IOThreadPool).
    @Test func closeReturnsTheLeftoversAndRefusesLaterPushes() {
        let queue = InjectQueue()
        queue.push(contentsOf: [1, 2, 3])
        queue.push(4)
        #expect(queue.close() == [1, 2, 3, 4])
        #expect(queue.isEmpty)
        #expect(queue.count == 0)
        #expect(queue.pop() == nil)
        #expect(queue.pop(upTo: 10) == [])
        #expect(!queue.push(5), "a push after close is refused")
        #expect(queue.isEmpty, "and leaves nothing behind")
        #expect(queue.close() == [], "a second close finds nothing")
    }

    /// Pools shut down on many threads at once, each closing its own inject queue, often empty. No
    /// close may touch memory that another queue's close touches (ThreadSanitizer checks it: copying
    /// an empty `Deque` into a new `Array` writes to the standard library's shared empty-array storage).
    @Test func emptyQueuesCloseOnManyThreadsAtOnce() async {
        let leftovers = await runOnThreads(2) { _ -> Int in
            var leftovers = 0
            for _ in 0..<1_000 {
                let queue = InjectQueue()
                queue.push(1)
                _ = queue.pop()
                leftovers += queue.close().count
            }
            return leftovers
        }
        #expect(leftovers == [0, 0])
    }

    /// Two producers (single pushes and batches, as spawns and overflow do) and two consumers
    /// (single and batch pops, as workers do): every job comes out exactly once, and each
    /// producer's jobs come out in the order it pushed them.
    @Test func concurrentProducersAndConsumersSeeEveryJobExactlyOnce() async {
        let perProducer: UInt = 15_000
        let queue = InjectQueue()
        let producersDone = Counter()
        let guardDeadline = hangGuard(seconds: 120)  // a hang detector: the full suite in parallel on 2 cores can slow this to 30+ s
        let seen = await runOnThreads(4) { role -> [UInt] in
            if role < 2 {
                // Producer `role` pushes role * perProducer + 1 ... (role + 1) * perProducer.
                var next = UInt(role) * perProducer + 1
                let end = next + perProducer
                var refused: [UInt] = []
                while next < end {
                    if next % 7 == 0 {
                        let batch = Array(next..<min(next + 5, end))
                        queue.push(contentsOf: batch)
                        next += UInt(batch.count)
                    } else {
                        if !queue.push(next) { refused.append(next) }
                        next += 1
                    }
                }
                producersDone.increment()
                return refused
            }
            var mine: [UInt] = []
            while monotonicNanoseconds() < guardDeadline {
                let taken = role == 2 ? queue.pop().map { [$0] } ?? [] : queue.pop(upTo: 16)
                if !taken.isEmpty {
                    mine += taken
                } else if producersDone.count == 2, queue.isEmpty {
                    break
                } else {
                    sched_yield()
                }
            }
            return mine
        }
        #expect(monotonicNanoseconds() < guardDeadline, "the hang guard ended the test")
        #expect(seen[0].isEmpty && seen[1].isEmpty, "an open queue refused pushes")
        let all = seen[2...].flatMap { $0 } + queue.close()
        let (missing, duplicated) = exactlyOnce(all, expected: 1...2 * perProducer)
        #expect(missing.isEmpty, "lost jobs, among them \(missing)")
        #expect(duplicated.isEmpty, "jobs seen twice, among them \(duplicated)")
        #expect(all.count == Int(2 * perProducer))
        for consumer in seen[2...] {
            for producer in UInt(0)..<2 {
                let range = (producer * perProducer + 1)...((producer + 1) * perProducer)
                let fromProducer = consumer.filter { range.contains($0) }
                #expect(zip(fromProducer, fromProducer.dropFirst()).allSatisfy { $0 < $1 }, "FIFO per producer")
            }
        }
    }
}
