import Glibc

/// A one-shot latch for synchronous start-up hand-shakes: one side `open(with:)`s it once, the
/// other `wait()`s for the value. A pthread mutex + condition, because the waiting side is a plain
/// synchronous initializer (`IOThreadPool.init`), not a task.
final class Latch<Value: Sendable>: @unchecked Sendable {  // all state guarded by `mutex`
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var value: Value?

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func open(with value: Value) {
        pthread_mutex_lock(&mutex)
        self.value = value
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func wait() -> Value {
        pthread_mutex_lock(&mutex)
        while value == nil { pthread_cond_wait(&condition, &mutex) }
        let result = value!
        pthread_mutex_unlock(&mutex)
        return result
    }
}
