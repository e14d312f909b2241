import Glibc

/// A value guarded by a pthread mutex (`PThreadMutex`), with a condition variable to wait for it
/// to change. (Pthread primitives, not `Synchronization.Mutex`: see `Locked` for why
/// ThreadSanitizer needs them.)
///
/// `@unchecked Sendable`: `value` is only touched with `mutex` held.
final class ConditionLock<Value>: @unchecked Sendable {
    private let mutex = PThreadMutex()
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)  // timeouts immune to wall-clock jumps
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        mutex.destroy()
    }

    @inline(__always)
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&value)
    }

    /// Waits with the lock held until `ready(value)` is true, then runs `body`. With a deadline
    /// (CLOCK_MONOTONIC nanoseconds), gives up when it passes: `body` then runs with `timedOut` true.
    func wait<Result>(
        until ready: (inout Value) -> Bool, deadline: UInt64? = nil,
        then body: (inout Value, _ timedOut: Bool) -> Result
    ) -> Result {
        mutex.lock()
        defer { mutex.unlock() }
        while !ready(&value) {
            if let deadline {
                var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                if pthread_cond_timedwait(condition, mutex.pointer, &time) == ETIMEDOUT, !ready(&value) {
                    return body(&value, true)
                }
            } else {
                pthread_cond_wait(condition, mutex.pointer)
            }
        }
        return body(&value, false)
    }

    /// Wakes one waiter. Call with or without the lock held.
    func signal() { pthread_cond_signal(condition) }

    /// Wakes every waiter. (The library's waiters are one per lock; tests wake several.)
    func broadcast() { pthread_cond_broadcast(condition) }
}
