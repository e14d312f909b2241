import CIOPoolShims
import Glibc
@_spi(Benchmarks) @_spi(IOPoolSupport) @testable import IOPool  // SPI: @testable does not reach it
import Testing

/// Timers, sleep, timeouts, intervals and the Clock. No assertion depends on how late a timer
/// fires (the machine is shared); only on order, on "never early", and on counts.
@Suite(.timeLimit(.minutes(1)))
struct TimeTests {
    @Test func timerHeapPopsInDeadlineOrderAndRemovesEagerly() {
        var heap = TimerHeap<Int>()
        var generator = SplitMix64(seed: 42)
        let count = 100_000
        var deadlines: [UInt64] = []
        var ids: [TimerHeap<Int>.ID] = []
        for index in 0..<count {
            let deadline = generator.next() % 1_000_000  // many ties: they fire in insertion order
            deadlines.append(deadline)
            let id = heap.reserve()
            heap.insert(id, deadline: deadline, index)
            ids.append(id)
        }
        // Remove every third timer: they must leave the heap at once.
        // One #expect for the whole loop: an expectation per removal costs seconds under TSan, and
        // this synchronous test holds a thread of the cooperative pool while it runs.
        var removed = Set<Int>()
        var wrongRemovals: [Int] = []
        for index in stride(from: 0, to: count, by: 3) {
            if heap.remove(ids[index]) != index { wrongRemovals.append(index) }
            removed.insert(index)
        }
        #expect(wrongRemovals.isEmpty, "remove did not return these timers: \(wrongRemovals.prefix(10))")
        #expect(heap.remove(ids[0]) == nil, "a removed timer is gone")
        #expect(heap.count == count - removed.count)
        var popped: [Int] = []
        while let payload = heap.popDue(now: .max) { popped.append(payload) }
        let expected = (0..<count).filter { !removed.contains($0) }.sorted {
            (deadlines[$0], $0) < (deadlines[$1], $1)
        }
        #expect(popped == expected)
        #expect(heap.isEmpty)
    }

    @Test func timerHeapSlotsAreReusedAndStaleIDsMiss() {
        var heap = TimerHeap<String>()
        let first = heap.reserve()
        heap.insert(first, deadline: 10, "first")
        #expect(heap.popDue(now: 9) == nil, "not due yet")
        #expect(heap.popDue(now: 10) == "first")
        // The slot goes to the next timer; the fired timer's ID must not reach it.
        let second = heap.reserve()
        heap.insert(second, deadline: 20, "second")
        #expect(heap.remove(first) == nil, "a stale ID misses the slot's next timer")
        #expect(heap.count == 1)
        // A reserved ID is not scheduled: removing it finds nothing, and it can still be inserted.
        let reserved = heap.reserve()
        #expect(heap.remove(reserved) == nil)
        heap.insert(reserved, deadline: 5, "reserved")
        #expect(heap.nextDeadline == 5)
        // A released ID goes back to the slab without ever being scheduled.
        let unused = heap.reserve()
        heap.release(unused)
        #expect(heap.remove(unused) == nil)
        heap.insert(heap.reserve(), deadline: 1, "reuses the released slot")
        #expect(heap.removeAll() == ["reuses the released slot", "reserved", "second"])
        #expect(heap.isEmpty && heap.remove(second) == nil)
    }

    @Test func sleepsWakeInDeadlineOrder() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        let order = Locked<[UInt64]>([])
        try await thread.spawn {
            // Children start only after this job ends (one thread), then arm their timers.
            let base = IOClock.Instant.now.advanced(by: .seconds(1)).nanoseconds
            var generator = SplitMix64(seed: 7)
            for _ in 0..<1_000 {
                let deadline = base + generator.next() % 300_000_000
                spawn {
                    let armedInTheFuture = IOClock.Instant.now.nanoseconds < deadline
                    try? await sleep(until: IOClock.Instant(nanoseconds: deadline))
                    if armedInTheFuture { order.withLock { $0.append(deadline) } }
                }
            }
        }.value
        await pool.shutdownGracefully()
        let woken = order.withLock { $0 }
        #expect(woken.count > 900, "nearly every timer was armed before its deadline")
        #expect(woken == woken.sorted())
    }

    @Test func cancellingPendingSleepsRemovesTheirTimers() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        let count = 20_000
        let (cancelled, pendingWhileArmed, pendingAfter) = try await thread.spawn { () async -> (Int, Int, Int) in
            await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        do {
                            try await sleep(for: .seconds(3600))
                            return false
                        } catch {
                            return error is CancellationError
                        }
                    }
                }
                while thread.pendingTimerCount < count { await Task.yield() }
                let armed = thread.pendingTimerCount
                group.cancelAll()
                var cancelled = 0
                for await wasCancelled in group where wasCancelled { cancelled += 1 }
                return (cancelled, armed, thread.pendingTimerCount)
            }
        }.value
        #expect(pendingWhileArmed == count)
        #expect(cancelled == count, "every sleep resumed exactly once, with CancellationError")
        #expect(pendingAfter == 0, "cancelled timers leave the heap at once")
        await pool.shutdownGracefully()
    }

    @Test func timersNeverFireEarly() async throws {
        for milliseconds in [0, 1, 5, 20] {
            let deadline = IOClock.Instant.now.advanced(by: .milliseconds(milliseconds))
            try await sleep(until: deadline)
            #expect(IOClock.Instant.now >= deadline)
        }
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let late = try await pool.spawn { () async throws -> Bool in
            let deadline = IOClock.Instant.now.advanced(by: .milliseconds(3))
            try await Task.sleep(until: deadline, clock: .io)
            return IOClock.Instant.now >= deadline
        }.value
        #expect(late)
        await pool.shutdownGracefully()
    }

    @Test func sleepAccuracyIsReported() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let overshoots = try await pool.spawn { () async throws -> [Duration] in
            var result: [Duration] = []
            for _ in 0..<20 {
                let start = IOClock.Instant.now
                try await sleep(for: .milliseconds(2))
                result.append(start.duration(to: .now) - .milliseconds(2))
            }
            return result.sorted()
        }.value
        // Reported, not asserted: this machine is shared and its timing noisy.
        print("IOClock sleep(2 ms) overshoot: median \(overshoots[10]), max \(overshoots[19])")
        #expect(overshoots.allSatisfy { $0 >= .zero })
        await pool.shutdownGracefully()
    }

    @Test func withTimeoutCancelsAStuckReadAndLeavesTheStreamUsable() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        async let accepted = listener.accept()
        let client = try await TCPStream.connect(to: try listener.localAddress)
        let server = try await accepted
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let outcome = try await pool.spawn { () async -> String in
            do {
                _ = try await withTimeout(.milliseconds(20)) { try await server.read() }
                return "read returned"
            } catch let error as TimeoutError {
                return "\(error)"
            } catch {
                return "other error: \(error)"
            }
        }.value
        #expect(outcome.contains("did not finish within"))
        try await client.write(Array("late".utf8))
        let late = try await pool.spawn { try await withTimeout(.seconds(30)) { try await server.read() } }.value
        #expect(late == Array("late".utf8))
        client.close()
        server.close()
        listener.close()
        await pool.shutdownGracefully()
    }

    @Test func withTimeoutReturnsTheValueWhenInTime() async throws {
        let value = try await withTimeout(.seconds(30)) { 42 }
        #expect(value == 42)
        await #expect(throws: TimeoutError(timeout: .milliseconds(1))) {
            try await withTimeout(.milliseconds(1)) { try await sleep(for: .seconds(3600)) }
        }
    }

    @Test func intervalsTickAtLeastOnePeriodApart() async throws {
        var ticks: [IOClock.Instant] = []
        for try await tick in intervals(every: .milliseconds(5)) {
            ticks.append(tick)
            if ticks.count == 4 { break }
        }
        for (earlier, later) in zip(ticks, ticks.dropFirst()) {
            #expect(earlier.duration(to: later) >= .milliseconds(5))
        }
    }

    // MARK: Durations beyond the clock

    @Test func durationsConvertToNanosecondsSaturatingAtNever() {
        #expect(Duration.nanoseconds(5).wholeNanoseconds == 5)
        #expect((Duration.seconds(2) + .nanoseconds(3)).wholeNanoseconds == 2_000_000_003)
        #expect(Duration.seconds(-1).wholeNanoseconds == 0, "negative counts as zero")
        #expect(Duration.seconds(10_000_000_000).wholeNanoseconds == 10_000_000_000_000_000_000)
        #expect(Duration.seconds(Int64.max).wholeNanoseconds == .max, "past UInt64 is never")
        #expect(Duration.seconds(Int64.min).wholeNanoseconds == 0)
        let now = IOClock.Instant.now
        #expect(now.advanced(by: .seconds(10_000_000_000)) > now, "later, not wrapped into the past")
        #expect(now.advanced(by: .seconds(Int64.max)).nanoseconds == .max)
        #expect(now.advanced(by: .seconds(Int64.min)).nanoseconds == 0)
        #expect(IOClock.Instant(nanoseconds: .max - 1).advanced(by: .nanoseconds(5)).nanoseconds == .max)
        #expect(monotonicDeadline(afterNanoseconds: .max) == .max)
    }

    /// Each sleep far past the end of the clock is armed, is still pending 50 ms later (the wrapped
    /// arithmetic returned at once or after a few milliseconds), and ends by cancellation.
    @Test func sleepsLongerThanTheClockWaitUntilCancelled() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        let sleeps: [(String, @Sendable () async throws -> Void)] = [
            ("sleep(for: 1e10 s)", { try await sleep(for: .seconds(10_000_000_000)) }),
            ("sleep(for: Int64.max s)", { try await sleep(for: .seconds(Int64.max)) }),
            ("Task.sleep(for: Int64.max s, clock: .io)", { try await Task.sleep(for: .seconds(Int64.max), clock: .io) }),
            ("IOClock.sleep(until: UInt64.max)", { try await IOClock().sleep(until: .init(nanoseconds: .max)) }),
            ("withTimeout(Int64.max s)", {
                _ = try await withTimeout(.seconds(Int64.max)) { try await sleep(for: .seconds(Int64.max)) }
            }),
        ]
        for (name, body) in sleeps {
            let (armed, pendingLater, ending) = try await thread.spawn { () async -> (Int, Int, String) in
                await withTaskGroup(of: String.self) { group in
                    let ended = Counter()
                    group.addTask {
                        defer { ended.increment() }
                        return await outcome { try await body() }
                    }
                    while thread.pendingTimerCount == 0 && ended.count == 0 { await Task.yield() }
                    let armed = thread.pendingTimerCount
                    try? await Task.sleep(for: .milliseconds(50))  // the global clock: not this loop's timers
                    let pendingLater = ended.count == 0 ? thread.pendingTimerCount : 0
                    group.cancelAll()
                    return (armed, pendingLater, await group.next()!)
                }
            }.value
            #expect(armed > 0, "\(name) armed a timer")
            #expect(pendingLater == armed, "\(name) was still pending after 50 ms")
            #expect(ending == "CancellationError", "\(name)")
        }
        await pool.shutdownGracefully()
    }

    @Test func sleepsOfZeroOrNegativeDurationsReturnAtOnce() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        let pending = try await thread.spawn { () async throws -> Int in
            try await sleep(for: .zero)
            try await sleep(for: .seconds(-1))
            try await sleep(for: .seconds(Int64.min))
            try await Task.sleep(for: .seconds(Int64.min), clock: .io)
            try await IOClock().sleep(until: .init(nanoseconds: 0))
            return thread.pendingTimerCount
        }.value
        #expect(pending == 0, "no timer was armed")
        // The timer is already due, so the operation is cancelled at once; one that returns
        // without waiting still gives its value.
        #expect(try await withTimeout(.seconds(-1)) { 42 } == 42)
        await pool.shutdownGracefully()
    }

    @Test func epollTimeoutsBeyondTheClockAreAcceptedAndClamped() throws {
        // The millisecond fallback rounds up (never early) and clamps at INT_MAX (~24.8 days)
        // instead of wrapping an int.
        #expect(ciopool_timeout_milliseconds(-1) == -1, "negative blocks")
        #expect(ciopool_timeout_milliseconds(0) == 0)
        #expect(ciopool_timeout_milliseconds(1) == 1)
        #expect(ciopool_timeout_milliseconds(1_000_000) == 1)
        #expect(ciopool_timeout_milliseconds(1_000_001) == 2)
        #expect(ciopool_timeout_milliseconds(30 * 86_400 * 1_000_000_000) == Int32.max)
        #expect(ciopool_timeout_milliseconds(Int64.max) == Int32.max)
        // The longest timeout the reactor passes (Int64.max ns) is a valid wait: with an event
        // ready it returns the event, where an invalid timeout would fail with EINVAL.
        let epoll = epoll_create1(CInt(EPOLL_CLOEXEC))
        let event = eventfd(1, CInt(EFD_CLOEXEC))
        defer { close(epoll); close(event) }
        var interest = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: event))
        #expect(epoll_ctl(epoll, EPOLL_CTL_ADD, event, &interest) == 0)
        var ready = epoll_event()
        #expect(ciopool_epoll_wait_ns(epoll, &ready, 1, Int64.max) == 1)
    }

    @Test func instantArithmetic() {
        let instant = IOClock.Instant(nanoseconds: 1_000)
        #expect(instant.advanced(by: .nanoseconds(500)).nanoseconds == 1_500)
        #expect(instant.advanced(by: .nanoseconds(-2_000)).nanoseconds == 0, "saturates at zero")
        #expect(instant.duration(to: IOClock.Instant(nanoseconds: 400)) == .nanoseconds(-600))
        #expect(IOClock().minimumResolution == .nanoseconds(1))
    }
}
