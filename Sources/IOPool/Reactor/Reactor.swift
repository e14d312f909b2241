import CIOPoolShims
import Glibc
import SystemPackage

/// One epoll instance, its eventfd waker and its registrations. Each IOThread owns one.
///
/// Thread-safety: `wake()` may be called from any thread (it only writes the eventfd). Everything
/// else is confined to the owning loop thread, which is why this class is `@unchecked Sendable`.
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
    let wakeFD: CInt
    private var events: UnsafeMutableBufferPointer<epoll_event>
    private var table: [Registration?] = []
    private var nextRegistrationID: UInt32 = 0
    private var nextWaiterID: UInt64 = 0
    private static let wakeToken: UInt64 = UInt64.max

    init() throws(IOError) {
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
    }

    deinit {
        events.deallocate()
    }

    /// Closes the epoll and eventfd descriptors. Loop thread only, once, at the end of the loop.
    func closeDescriptors() {
        close(wakeFD)
        close(epollFD)
    }

    func makeWaiterID() -> UInt64 {
        nextWaiterID &+= 1
        return nextWaiterID
    }

    /// Wakes a loop blocked in `epoll_wait`. Any thread.
    func wake() {
        var one: UInt64 = 1
        // EAGAIN means the counter is saturated: the loop will wake anyway.
        _ = withUnsafeBytes(of: &one) { Glibc.write(wakeFD, $0.baseAddress, 8) }
    }

    /// Registers `fd` edge-triggered for read and write readiness.
    func register(fd: CInt, loop: IOThread, isStream: Bool) throws(IOError) -> Registration {
        nextRegistrationID &+= 1
        let registration = Registration(fd: fd, id: nextRegistrationID, loop: loop, isStream: isStream)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        event.data.u64 = UInt64(registration.id) << 32 | UInt64(UInt32(bitPattern: fd))
        _ = try syscall("epoll_ctl(ADD)") { epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) }
        let index = Int(fd)
        if index >= table.count {
            table.append(contentsOf: repeatElement(nil, count: max(index + 1, table.count * 2) - table.count))
        }
        table[index] = registration
        return registration
    }

    /// Removes `registration` from the table and fails its waiters with `error`.
    /// The caller closes the fd afterwards, which removes it from the epoll set.
    func deregister(_ registration: Registration, _ failure: Registration.Failure) {
        let index = Int(registration.fd)
        if index < table.count, let current = table[index], current === registration {
            table[index] = nil
        }
        registration.fail(failure)
    }

    /// Fails every registration's waiters (the loop is shutting down).
    func failAll(_ failure: Registration.Failure) {
        for index in table.indices {
            if let registration = table[index] {
                table[index] = nil
                    registration.fail(failure)
            }
        }
    }

    /// Outcome of one `poll`, for the loop's counters.
    struct PollResult {
        var events = 0
        var woken = false
    }

    /// One `epoll_pwait2` with a timeout in nanoseconds (nil blocks); dispatches every event to its
    /// registration, whose waiters resume (their jobs land in the loop's local queue).
    func poll(timeoutNanoseconds timeout: UInt64?) -> PollResult {
        let count: CInt
        let nanoseconds = timeout.map { Int64(clamping: $0) } ?? -1
        do {
            count = try syscall("epoll_wait") {
                ciopool_epoll_wait_ns(epollFD, events.baseAddress!, CInt(events.count), nanoseconds)
            }
        } catch {
            // Only EINVAL/ENOMEM are possible here; neither can be recovered by the loop.
            fatalError("epoll_wait on the IOThread's reactor failed: \(error)")
        }
        var result = PollResult()
        for i in 0..<Int(count) {
            let data = events[i].data.u64
            if data == Reactor.wakeToken {
                var value: UInt64 = 0
                _ = withUnsafeMutableBytes(of: &value) { Glibc.read(wakeFD, $0.baseAddress, 8) }
                result.woken = true
                continue
            }
            result.events += 1
            let fd = Int(UInt32(truncatingIfNeeded: data))
            let id = UInt32(truncatingIfNeeded: data >> 32)
            guard fd < table.count, let registration = table[fd], registration.id == id else {
                continue  // stale: the fd was closed (and maybe reused) after the event was queued
            }
            registration.handle(events: events[i].events)
        }
        if Int(count) == events.count {
            let bigger = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: events.count * 2)
            events.deallocate()
            events = bigger
        }
        return result
    }
}
