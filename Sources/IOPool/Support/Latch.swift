/// A one-shot latch for synchronous start-up hand-shakes: one side `open()`s it once, the other
/// `wait()`s until it is open. A pthread mutex and condition (`ConditionLock`), because the
/// waiting side is a plain synchronous initializer (`IOThreadPool.init`), not a task.
final class Latch: Sendable {
    private let isOpen = ConditionLock(false)

    func open() {
        isOpen.withLock { isOpen in
            isOpen = true
            self.isOpen.signal()  // one waiter: the thread that started this one
        }
    }

    func wait() {
        isOpen.wait(until: { $0 }) { _, _ in }
    }
}
