import CIOPoolShims
import Glibc
import SystemPackage
import Synchronization

/// One epoll instance, its eventfd waker and its registrations. Each IOThread owns one; each
/// `WorkStealingPool` owns one shared by its workers (inside its `SharedDriver`).
///
/// Thread-safety: `wake()` may be called from any thread (it writes the eventfd, under `wakeLock`
/// so that it never writes after `closeDescriptors()`: see there). A confined
/// reactor (an IOThread's) is otherwise touched only on its loop thread. A shared reactor guards
/// its table with `tableLock` (workers register and close sockets while one of them polls), and
/// `poll` is called by one thread at a time (the holder of the driver). Hence `@unchecked Sendable`.
///
/// Design:
/// - Edge-triggered (`EPOLLET`), registered once for `EPOLLIN | EPOLLOUT | EPOLLRDHUP`: no
///   `EPOLL_CTL_MOD` on the data path. Readiness lives in the `Registration`.
/// - `epoll_data.u64` packs `(registration id << 32) | fd`. The table is indexed by fd; an event
///   whose id does not match the slot's current registration is stale (the fd was closed and its
///   number reused) and is ignored, as NIO does.
/// - Deregistration happens on close: the kernel drops a closed fd from the epoll set, and we
///   clear the table slot (only if it still holds the same id).
final class Reactor: @unchecked Sendable {
    /// Events fetched per `epoll_wait`; doubled whenever a wait fills the buffer (NIO starts at 64 too).
    static let initialEventCapacity = 64

    let epollFD: CInt
    /// The eventfd; -1 once closed (read and written under `wakeLock`).
    private(set) var wakeFD: CInt
    /// Guards `wakeFD` against a late `wake()`: a producer decides to wake a loop under the loop's
    /// own lock but writes after releasing it, and the loop may close its descriptors in between;
    /// without this lock that write could land in a descriptor that reused the number (SwiftNIO's
    /// `externalSelectorFDLock` exists for the same race). Taken once per wake-up, i.e. once per
    /// loop sleep, never on the data path.
    private let wakeLock = Locked(0)
    private var events: UnsafeMutableBufferPointer<epoll_event>
    /// Indexed by fd; each entry holds one strong reference (retained when added, released when
    /// taken out). `Unmanaged` so that an event's lookup borrows the registration instead of
    /// retaining and releasing it (one pair per event, ~40 instructions per echoed message).
    private var table: [Unmanaged<Registration>?] = []
    private var nextRegistrationID: UInt32 = 0
    private var nextWaiterID: UInt64 = 0
    private static let wakeToken: UInt64 = UInt64.max
    /// Shared reactors only: guards `table` and `nextRegistrationID` (a confined reactor touches
    /// them on its loop only), and orders `stopped` against registrations.
    /// (The locked value is unused; not `Void`, whose zero size confuses ThreadSanitizer: see `Parker`.)
    private let tableLock: Locked<Int>?
    /// Set by `failAll` (the loop or pool is stopping), under the table lock; later registrations
    /// fail. Atomic so that any thread may read it without that lock (a shared registration's
    /// synchronous attempt checks it instead of taking a lock).
    private let stopped = Atomic<Bool>(false)
    var hasStopped: Bool { stopped.load(ordering: .acquiring) }
    /// Registrations in the table, for metrics. Changed with the table (on the loop, or under the
    /// table lock), read from any thread; once per socket, never per event.
    private let registered = Atomic<Int>(0)
    var registeredCount: Int { registered.load(ordering: .relaxed) }
    /// Shared reactors only: the registrations of one poll's events, looked up under the lock and
    /// handled after it, retained meanwhile (as long as `events`, reused between polls). Raw
    /// storage of trivial values rather than an array of `(Registration, UInt32)`: the array cost
    /// a dynamic exclusivity check per event and a generic tuple destroy per poll, about 110
    /// instructions per echoed message on a `WorkStealingPool` (callgrind).
    private var dispatch: UnsafeMutableBufferPointer<(registration: Unmanaged<Registration>, events: UInt32)>

    var isShared: Bool { tableLock != nil }

    /// A reactor for one IOThread (`shared == false`) or for a pool's shared driver.
    init(shared: Bool = false) throws(IOError) {
        tableLock = shared ? Locked(0) : nil
        let epollFD = try syscall("epoll_create1") { epoll_create1(CInt(EPOLL_CLOEXEC)) }
        let wakeFD: CInt
        do {
            wakeFD = try syscall("eventfd") { eventfd(0, CInt(EFD_CLOEXEC | EFD_NONBLOCK)) }
        } catch {
            close(epollFD)
            throw error
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue  // level-triggered: stays ready until drained
        event.data.u64 = Reactor.wakeToken
        do {
            _ = try syscall("epoll_ctl(ADD eventfd)") { epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) }
        } catch {
            close(wakeFD)
            close(epollFD)
            throw error
        }
        self.epollFD = epollFD
        self.wakeFD = wakeFD
        events = .allocate(capacity: Reactor.initialEventCapacity)
        dispatch = .allocate(capacity: shared ? Reactor.initialEventCapacity : 0)
    }

    deinit {
        events.deallocate()
        dispatch.deallocate()
        for entry in table { entry?.release() }
    }

    /// Closes the epoll and eventfd descriptors. Once, at the end of the loop (or of the driver);
    /// a `wake()` from then on does nothing.
    func closeDescriptors() {
        wakeLock.withLock { _ in
            close(wakeFD)
            wakeFD = -1
        }
        close(epollFD)
    }

    func makeWaiterID() -> UInt64 {
        nextWaiterID &+= 1
        return nextWaiterID
    }

    /// Wakes a loop blocked in `epoll_wait`. Any thread.
    func wake() {
        var one: UInt64 = 1
        wakeLock.withLock { _ in
            guard wakeFD >= 0 else { return }  // closed: nobody is left to wake
            // EAGAIN means the counter is saturated: the loop will wake anyway.
            _ = withUnsafeBytes(of: &one) { Glibc.write(wakeFD, $0.baseAddress, 8) }
        }
    }

    /// Runs `body` with the table lock held when shared.
    @inline(__always)
    private func withTable<Value, Failure: Error>(_ body: () throws(Failure) -> Value) throws(Failure) -> Value {
        guard let tableLock else { return try body() }
        return try tableLock.withLock { _ in Result { () throws(Failure) in try body() } }.get()
    }

    /// Registers `fd` edge-triggered for read and write readiness: for `loop` (confined), or, with
    /// `loop == nil`, with this shared reactor.
    func register(fd: CInt, loop: IOThread?, isStream: Bool) throws(IOError) -> Registration {
        let registration = makeRegistration(fd: fd, loop: loop, isStream: isStream)
        try add(registration)
        return registration
    }

    /// A registration for `fd` that is not yet in the epoll set (see `add`): a socket publishes it
    /// first, so that of several threads making its first operations exactly one adds it.
    func makeRegistration(fd: CInt, loop: IOThread?, isStream: Bool) -> Registration {
        precondition((loop == nil) == isShared, "a registration's mode must match its reactor's")
        let id = withTable { () -> UInt32 in
            nextRegistrationID &+= 1
            return nextRegistrationID
        }
        return Registration(fd: fd, id: id, loop: loop, sharedReactor: loop == nil ? self : nil, isStream: isStream)
    }

    /// Adds `registration` to the epoll set and the table.
    func add(_ registration: Registration) throws(IOError) {
        try withTable { () throws(IOError) in
            if hasStopped { throw isShared ? IOError.poolStopped("register") : IOError.loopStopped("register") }
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
            event.data.u64 = UInt64(registration.id) << 32 | UInt64(UInt32(bitPattern: registration.fd))
            _ = try syscall("epoll_ctl(ADD)") { epoll_ctl(epollFD, EPOLL_CTL_ADD, registration.fd, &event) }
            let index = Int(registration.fd)
            if index >= table.count {
                table.append(contentsOf: repeatElement(nil, count: max(index + 1, table.count * 2) - table.count))
            }
            if let stale = table[index] {
                stale.release()
            } else {
                registered.wrappingAdd(1, ordering: .relaxed)
            }
            table[index] = Unmanaged.passRetained(registration)
        }
    }

    /// Takes `registration`'s entry out of the table if it is there (the caller holds the table).
    /// Returns whether it was.
    private func takeOut(_ registration: Registration) -> Bool {
        let index = Int(registration.fd)
        guard index < table.count, let current = table[index], current.toOpaque() == Unmanaged.passUnretained(registration).toOpaque() else {
            return false
        }
        table[index] = nil
        registered.wrappingSubtract(1, ordering: .relaxed)
        current.release()  // the caller still holds `registration`
        return true
    }

    /// Removes `registration` from the table and fails its waiters with `error`.
    /// The caller closes the fd afterwards, which removes it from the epoll set.
    func deregister(_ registration: Registration, _ failure: Registration.Failure) {
        withTable { _ = takeOut(registration) }
        registration.fail(failure)
    }

    /// Takes a registration out of the table and the epoll set, failing its waiters as closed (a
    /// socket that was closed while its first operation added it).
    func remove(_ registration: Registration) {
        withTable {
            if takeOut(registration) {
                // Not through `syscall`: the fd may be closing concurrently (EBADF), which removes
                // it from the set anyway; any error here is harmless.
                _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, registration.fd, nil)
            }
        }
        registration.fail(.closed)
    }

    /// Fails every registration's waiters (the loop or pool is shutting down); the reactor
    /// refuses registrations from then on.
    func failAll(_ failure: Registration.Failure) {
        let registrations = withTable { () -> [Registration] in
            stopped.store(true, ordering: .releasing)
            defer {
                table = []
                registered.store(0, ordering: .relaxed)
            }
            return table.compactMap { $0?.takeRetainedValue() }
        }
        for registration in registrations { registration.fail(failure) }
    }

    /// Outcome of one `poll`, for the loop's counters.
    struct PollResult {
        var events = 0
    }

    /// One `epoll_pwait2` with a timeout in nanoseconds (nil blocks); dispatches every event to its
    /// registration, whose waiters resume (their jobs land in the loop's local queue).
    func poll(timeoutNanoseconds timeout: UInt64?) -> PollResult {
        // Locals: a class's stored `var` read in the loop would cost a dynamic exclusivity check.
        let events = self.events, dispatch = self.dispatch
        let count: CInt
        let nanoseconds = timeout.map { Int64(clamping: $0) } ?? -1
        do {
            count = try syscall("epoll_wait") {
                ciopool_epoll_wait_ns(epollFD, events.baseAddress!, CInt(events.count), nanoseconds)
            }
        } catch {
            // Only EINVAL/ENOMEM are possible here; neither can be recovered by the loop.
            fatalError("epoll_wait on a reactor failed: \(error)")
        }
        var result = PollResult()
        var dispatched = 0
        withTable {
            for i in 0..<Int(count) {
                let data = events[i].data.u64
                if data == Reactor.wakeToken {
                    var value: UInt64 = 0
                    _ = withUnsafeMutableBytes(of: &value) { Glibc.read(wakeFD, $0.baseAddress, 8) }
                    continue
                }
                result.events += 1
                let fd = Int(UInt32(truncatingIfNeeded: data))
                let id = UInt32(truncatingIfNeeded: data >> 32)
                guard fd < table.count, let entry = table[fd] else { continue }
                // Borrowed: the table holds it, and only this thread (under the lock, if shared)
                // takes it out.
                entry._withUnsafeGuaranteedRef { registration in
                    // Another id: stale, the fd was closed (and maybe reused) after the event was queued.
                    guard registration.id == id else { return }
                    if isShared {
                        // Handled after the lock; retained until then.
                        dispatch[dispatched] = (Unmanaged.passRetained(registration), events[i].events)
                        dispatched += 1
                    } else {
                        registration.handle(events: events[i].events)
                    }
                }
            }
        }
        for i in 0..<dispatched {
            let (registration, events) = dispatch[i]
            registration.takeUnretainedValue().handle(events: events)
            registration.release()
        }
        if Int(count) == events.count {
            let bigger = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: events.count * 2)
            events.deallocate()
            self.events = bigger
            if isShared {
                dispatch.deallocate()
                self.dispatch = .allocate(capacity: bigger.count)
            }
        }
        return result
    }
}
