import Glibc

/// A pthread mutex at a fixed heap address (a pthread mutex must not move once initialized): the
/// one place this module sets one up and tears it down, for `Locked`, `ConditionLock` and a
/// shared `Registration`. Pthread primitives rather than `Synchronization.Mutex`: see `Locked`
/// for why ThreadSanitizer needs them.
///
/// A handle, not an owner: copies name the same mutex, and the owner (whose deinit runs once)
/// calls `destroy()`.
struct PThreadMutex {
    let pointer: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(pointer, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    @inline(__always)
    func lock() { pthread_mutex_lock(pointer) }

    @inline(__always)
    func unlock() { pthread_mutex_unlock(pointer) }

    /// Destroys and frees the mutex: the owner's deinit, once, with the mutex unlocked.
    func destroy() {
        pthread_mutex_destroy(pointer)
        pointer.deallocate()
    }
}
