import Synchronization

/// How a worker sleeps: on the pool's shared driver (blocked in `epoll_pwait2`, if it got the
/// driver) or on its own condition variable. tokio's `multi_thread/park.rs`.
///
/// ## States
///
/// `empty` → `parkedOnCondition` / `parkedOnDriver` → `empty`; `unpark()` swaps in `notified`
/// and wakes the sleeper the way it sleeps (signal the condition, or write the driver's eventfd).
/// A notification that arrives before `park()` makes the next `park()` return at once, so a wake-up
/// is never lost between a worker's last look at the queues and its sleep.
///
/// The parker belongs to a worker (its identity, `Worker`), not to an OS thread: a `blocking { }`
/// hand-off moves it along with the queues.
final class Parker: Sendable {
    private static let empty = 0
    private static let parkedOnCondition = 1
    private static let parkedOnDriver = 2
    private static let notified = 3

    private let state = Atomic<Int>(Parker.empty)
    /// The lock and condition for `parkedOnCondition`. Its value is unused: the state is the atomic
    /// above (a zero-sized value would share its address with the next allocation, and
    /// ThreadSanitizer then reports accesses to it as races with unrelated memory).
    private let condition = ConditionLock(0)

    /// Sleeps until `unpark()`, or (on the driver) until I/O events or a timer, or a spurious
    /// wake-up: the caller re-checks its queues either way.
    func park(driver: SharedDriver) {
        if state.compareExchange(expected: Parker.notified, desired: Parker.empty, ordering: .acquiring).exchanged {
            return
        }
        if driver.tryLock() {
            defer { driver.unlock() }
            guard state.compareExchange(expected: Parker.empty, desired: Parker.parkedOnDriver, ordering: .acquiringAndReleasing).exchanged else {
                state.store(Parker.empty, ordering: .releasing)  // notified meanwhile
                return
            }
            driver.poll(block: true)
            state.store(Parker.empty, ordering: .releasing)
            return
        }
        condition.wait(until: { _ in
            // Under the condition's lock, so an `unpark` that sees `parkedOnCondition` signals only
            // once we wait. A notification may land between any two steps: every path re-reads.
            while true {
                switch state.load(ordering: .acquiring) {
                case Parker.notified:
                    if state.compareExchange(expected: Parker.notified, desired: Parker.empty, ordering: .acquiring).exchanged {
                        return true
                    }
                case Parker.parkedOnCondition:
                    return false  // a spurious wake-up: sleep on
                default:
                    if state.compareExchange(expected: Parker.empty, desired: Parker.parkedOnCondition, ordering: .acquiringAndReleasing).exchanged {
                        return false
                    }
                }
            }
        }, then: { _, _ in })
    }

    /// Wakes the worker if it sleeps, or makes its next `park()` return at once. Any thread.
    func unpark(driver: SharedDriver) {
        switch state.exchange(Parker.notified, ordering: .acquiringAndReleasing) {
        case Parker.parkedOnCondition:
            // Taking the lock orders this signal after the sleeper's wait began.
            condition.withLock { _ in }
            condition.signal()
        case Parker.parkedOnDriver:
            driver.wake()
        default:
            break
        }
    }
}
