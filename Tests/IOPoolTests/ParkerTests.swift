import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import Testing

/// `Parker` in isolation, on a `SharedDriver` of its own, both ways a worker sleeps: on the driver
/// (blocked in `epoll_pwait2`, when the parker gets the driver) and on its condition variable (when
/// someone else holds the driver; the tests hold it themselves for that). A parker may wake up
/// spuriously, so the tests only rely on: a notification is never lost, and a park on the driver
/// ends when its next timer is due.
///
/// Every park here has a watchdog that unparks it after a few seconds, so that a lost wake-up fails
/// the test instead of hanging it.
@Suite struct ParkerTests {
    enum Path: String, CaseIterable, CustomTestStringConvertible {
        case driver, condition
        var testDescription: String { rawValue }
    }

    /// Runs `body` with a fresh driver, held by the test when `path` is `.condition` (so parks
    /// sleep on the condition variable), and stops the driver afterwards.
    private func withDriver(_ path: Path, _ body: (SharedDriver) async throws -> Void) async throws {
        let driver = try SharedDriver()
        if path == .condition { #expect(driver.tryLock()) }
        try await body(driver)
        if path == .condition { driver.unlock() }
        driver.stop()
    }

    @Test(arguments: Path.allCases)
    func anUnparkBeforeParkIsNotLost(path: Path) async throws {
        try await withDriver(path) { driver in
            let parker = Parker()
            parker.unpark(driver: driver)
            let watchdog = Watchdog(parker, driver, seconds: 5)
            parker.park(driver: driver)  // returns at once: the notification waited for it
            // The notification was used up: a second unpark-then-park works the same way.
            parker.unpark(driver: driver)
            parker.park(driver: driver)
            #expect(!watchdog.finish(), "park() slept through an earlier unpark()")
        }
    }

    /// One thread parks in a loop; another unparks, then waits until the parker has come back
    /// before unparking again (so at most one notification is outstanding, and a lost one leaves
    /// the parker asleep). Each unpark lands at a different point of the parker's way into sleep.
    @Test(arguments: Path.allCases)
    func everyUnparkWakesTheParker(path: Path) async throws {
        try await withDriver(path) { driver in
            let parker = Parker()
            let rounds = 2_000
            let wakes = Counter()
            let stop = Flag()
            let parkerExited = Flag()
            let lost = Counter()
            _ = await runOnThreads(2) { role in
                if role == 0 {
                    while !stop.isSet {
                        parker.park(driver: driver)
                        wakes.increment()
                    }
                    parkerExited.set()
                    return
                }
                for _ in 0..<rounds {
                    let before = wakes.count
                    parker.unpark(driver: driver)
                    let guardDeadline = hangGuard(seconds: 5)
                    while wakes.count == before, monotonicNanoseconds() < guardDeadline { sched_yield() }
                    if wakes.count == before {
                        lost.increment()
                        break
                    }
                }
                stop.set()
                // Until the parker has left its loop: a buggy parker may lose these too.
                while !parkerExited.isSet {
                    parker.unpark(driver: driver)
                    usleep(1_000)
                }
            }
            #expect(lost.count == 0, "unpark() calls that left the parker asleep")
            #expect(wakes.count >= rounds)
        }
    }

    /// On the driver, `park()` blocks until the earliest timer is due, then fires it: a worker
    /// parked with a sleep pending wakes for it without anyone unparking it.
    @Test func aParkOnTheDriverEndsWhenTheNextTimerIsDue() async throws {
        let driver = try SharedDriver()
        let parker = Parker()
        let due = Locked<UInt64>(0)
        let sleeper = Task { () async -> UInt64? in
            // The deadline is taken here, not before the task starts: it must still be ahead
            // when the sleep arms its timer.
            let deadline = monotonicNanoseconds() + 100_000_000
            due.withLock { $0 = deadline }
            do {
                try await driver.sleep(untilNanoseconds: deadline)
                return monotonicNanoseconds()
            } catch {
                return nil
            }
        }
        let guardDeadline = hangGuard(seconds: 30)  // generous: the sleeper needs a cooperative thread
        while driver.pendingTimerCount == 0, monotonicNanoseconds() < guardDeadline {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(driver.pendingTimerCount == 1, "the sleep is armed")
        let watchdog = Watchdog(parker, driver, seconds: 5)
        // The watchdog is stopped on the parking thread itself, the moment the parks end: stopped
        // after the await, it would also count the time this test waits for a cooperative thread,
        // which on a loaded 2-core machine running the suites in parallel can exceed 5 s.
        let fired = await runOnThreads(1) { _ in
            let parkDeadline = hangGuard(seconds: 5)  // from now, not from before this test waited
            while driver.pendingTimerCount > 0, monotonicNanoseconds() < parkDeadline {
                parker.park(driver: driver)
            }
            return watchdog.finish()
        }
        #expect(fired == [false], "the parker slept past its timer")
        #expect(driver.pendingTimerCount == 0, "the park fired the timer")
        driver.stop()  // fails the sleep if it never fired, so the test ends either way
        let woke = await sleeper.value
        #expect(woke != nil, "the sleep ended by its timer")
        #expect((woke ?? 0) >= due.withLock { $0 }, "the timer fired early")
    }
}

/// Unparks `parker` if `finish()` was not called within `seconds` (then every millisecond until it
/// is, since a buggy parker may lose those wake-ups too), and says whether it had to.
private final class Watchdog: Sendable {
    private let state: ConditionLock<(finished: Bool, fired: Bool)>
    private let thread: PThread

    init(_ parker: Parker, _ driver: SharedDriver, seconds: UInt64) {
        let state = ConditionLock<(finished: Bool, fired: Bool)>((false, false))
        self.state = state
        let deadline = hangGuard(seconds: seconds)
        thread = try! PThread.start(name: "test-watchdog", stackSize: nil) {
            let fired = state.wait(until: { $0.finished }, deadline: deadline) { value, timedOut in
                value.fired = timedOut
                return timedOut
            }
            guard fired else { return }
            while !state.withLock({ $0.finished }) {
                parker.unpark(driver: driver)
                usleep(1_000)
            }
        }
    }

    /// Stops the watchdog; true if it had fired.
    func finish() -> Bool {
        state.withLock { $0.finished = true }
        state.broadcast()
        thread.join()
        return state.withLock { $0.fired }
    }
}
