import Glibc

/// A value guarded by a pthread mutex.
///
/// Why not `Synchronization.Mutex`: on Linux it locks with raw futex calls that ThreadSanitizer
/// does not see, so TSan reports every access under it as a race (reproduced with a ten-line
/// program: two threads appending to a `Mutex<[Int]>`). CI runs the tests under TSan, and false
/// reports would bury real ones. TSan intercepts pthread mutexes, so this lock is understood.
///
/// The value lives behind a pointer, not in a stored `var`: `withLock`'s `inout` access to a
/// class's stored property would cost a dynamic exclusivity check (two runtime calls and a
/// thread-local lookup) on every lock, and the mutex already makes the access exclusive. (The loop
/// takes its remote-queue lock every tick, `spawn` a `SpawnedTasks` list lock twice per task.)
///
/// `@unchecked Sendable`: `value` is only touched inside `withLock`, under `mutex`.
///
/// SPI-public (`@_spi(IOPoolSupport)`) for this package's other modules (IOPoolMetrics), which are
/// tested under TSan too; not API.
@_spi(IOPoolSupport) public final class Locked<Value>: @unchecked Sendable {
    private let mutex = PThreadMutex()
    private let value: UnsafeMutablePointer<Value>

    public init(_ value: Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        mutex.destroy()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    @inline(__always)
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&value.pointee)
    }
}
