import Glibc
@testable import IOPool
import Testing

/// `RunQueue` in isolation (tokio keeps the same tests beside its `queue.rs`): the owner's FIFO,
/// half-steals, overflow into the inject queue, and one owner racing two stealers. Jobs are plain
/// numbers here; the queue never looks at them.
@Suite struct RunQueueTests {
    @Test func theOwnerPopsInPushOrder() {
        let queue = RunQueue()
        let inject = InjectQueue()
        #expect(queue.pop() == nil)
        for job in UInt(1)...10 { queue.push(job, overflowingInto: inject) }
        #expect(queue.count == 10)
        #expect((0..<10).compactMap { _ in queue.pop() } == Array(1...10))
        #expect(queue.isEmpty)
        #expect(queue.pop() == nil)
        #expect(inject.isEmpty)
    }

    /// A stealer takes the older half (rounded up), keeps the newest of those to run now and leaves
    /// the rest in its own queue, in order.
    @Test func aStealTakesTheOlderHalfAndRunsItsNewestJob() {
        let victim = RunQueue()
        let thief = RunQueue()
        let inject = InjectQueue()
        for job in UInt(1)...9 { victim.push(job, overflowingInto: inject) }
        #expect(victim.steal(into: thief) == 5)  // took 1...5 (9 - 9/2)
        #expect(thief.drain() == [1, 2, 3, 4])
        #expect(victim.drain() == [6, 7, 8, 9])
        // One job: it is taken (a single job is never left behind), and the thief's queue stays empty.
        victim.push(10, overflowingInto: inject)
        #expect(victim.steal(into: thief) == 10)
        #expect(thief.isEmpty)
        #expect(victim.steal(into: thief) == nil)
    }

    /// A full ring moves its older half plus the new job to the inject queue, in FIFO order, so
    /// other workers can take them; the newer half stays.
    @Test func aFullRingOverflowsHalfIntoTheInjectQueue() {
        let queue = RunQueue()
        let inject = InjectQueue()
        let capacity = UInt(RunQueue.capacity)
        for job in 1...capacity { queue.push(job, overflowingInto: inject) }
        #expect(queue.count == Int(capacity))
        #expect(inject.isEmpty)
        queue.push(capacity + 1, overflowingInto: inject)
        #expect(inject.count == Int(capacity / 2) + 1)
        #expect(queue.count == Int(capacity / 2))
        #expect(inject.pop(upTo: Int.max) == Array(1...capacity / 2) + [capacity + 1])
        #expect(queue.drain() == Array(capacity / 2 + 1...capacity))
    }

    /// The ring's counters run freely and index it modulo its capacity; after many laps around the
    /// ring (never more than 150 jobs in it, so nothing overflows), jobs still come out once, in order.
    @Test func jobsSurviveManyLapsAroundTheRing() {
        let queue = RunQueue()
        let inject = InjectQueue()
        var popped: [UInt] = []
        var next: UInt = 1
        for lap in 0..<100 {
            for _ in 0..<(lap.isMultiple(of: 2) ? 150 : 50) {
                queue.push(next, overflowingInto: inject)
                next += 1
            }
            for _ in 0..<100 { popped.append(queue.pop()!) }
        }
        popped += queue.drain()
        #expect(inject.isEmpty)
        #expect(popped.elementsEqual(1..<next), "in order, each once")
    }

    /// One owner pushes in bursts (some longer than the ring, so it overflows) and pops, while two
    /// stealers steal from it and take overflowed jobs from the inject queue: every job comes out
    /// exactly once. At the end the owner stops popping and waits for the stealers to empty its
    /// ring, so stealing is certain to have happened. Bounded: the owner's work is finite and the
    /// stealers stop once it is done and the ring is empty (or at the hang guard).
    @Test func oneOwnerAndTwoStealersSeeEveryJobExactlyOnce() async {
        let jobCount: UInt = 40_000
        let finalBurst: UInt = 200
        let source = RunQueue()
        let inject = InjectQueue()
        let ownerDone = Flag()
        let guardDeadline = hangGuard(seconds: 120)  // a hang detector: the full suite in parallel on 2 cores can slow this to 30+ s

        let seen = await runOnThreads(3) { role -> [UInt] in
            var mine: [UInt] = []
            if role == 0 {
                var next: UInt = 1
                while next <= jobCount - finalBurst {
                    let burst = min(next % 300 + 1, jobCount - finalBurst - next + 1)
                    for _ in 0..<burst {
                        source.push(next, overflowingInto: inject)
                        next += 1
                    }
                    for _ in 0..<burst / 2 {
                        if let job = source.pop() { mine.append(job) }
                    }
                }
                while let job = source.pop() { mine.append(job) }
                for _ in 0..<finalBurst {
                    source.push(next, overflowingInto: inject)
                    next += 1
                }
                while !source.isEmpty, monotonicNanoseconds() < guardDeadline { sched_yield() }
                ownerDone.set()
                return mine
            }
            let local = RunQueue()
            while monotonicNanoseconds() < guardDeadline {
                if let job = source.steal(into: local) {
                    mine.append(job)
                    while let job = local.pop() { mine.append(job) }
                } else if let job = inject.pop() {
                    mine.append(job)
                } else if ownerDone.isSet, source.isEmpty {
                    break  // no push comes after `ownerDone`
                } else {
                    sched_yield()
                }
            }
            return mine
        }
        #expect(monotonicNanoseconds() < guardDeadline, "the hang guard ended the test")
        let all = seen.flatMap { $0 } + inject.close() + source.drain()
        let (missing, duplicated) = exactlyOnce(all, expected: 1...jobCount)
        #expect(missing.isEmpty, "lost jobs, among them \(missing)")
        #expect(duplicated.isEmpty, "jobs seen twice, among them \(duplicated)")
        #expect(all.count == Int(jobCount))
        #expect(seen[1].count + seen[2].count >= Int(finalBurst), "the stealers took the final burst")
    }
}
