import CIOPoolShims
import Glibc
import Synchronization

/// The outcome of one non-blocking attempt of a socket operation.
enum IOAttempt<Value> {
    /// Done; readiness stays as it is.
    case complete(Value)
    /// Done, and the kernel buffer is known to be drained (a short read): the next operation of this
    /// direction may suspend without first trying a syscall that would return EAGAIN.
    case drained(Value)
    /// EAGAIN: wait for readiness and try again.
    case wouldBlock
}

/// A non-blocking socket descriptor, shared by the socket types (TCPStream, TCPListener):
/// its lifetime and its lazy registration with one IOThread's reactor.
///
/// Lifetime: `lifetime` packs a "closed" bit and a count of users (the open socket itself counts as
/// one). A syscall holds a use for its duration; `close()` sets the bit and drops the open
/// reference; whoever drops the last use closes the fd. So a close never races a syscall into a
/// reused fd number (Go's fdMutex does the same).
///
/// Ownership: the first operation decides where the socket waits, and that never changes:
/// - on an IOThread (or outside any pool: the default pool's next thread), the socket belongs to
///   that thread's loop. Its confined `Registration` is created on the first wait and touched only
///   on the loop's thread; an operation running elsewhere tries its syscall where it is and hops to
///   the loop only to wait.
/// - on a `WorkStealingPool` worker, the socket registers at once with the pool's shared driver.
///   That registration is locked, so an operation waits on it from whatever thread it runs on,
///   without a hop (its task resumes on its own executor).
///
/// Concurrent use: any number of tasks may use one socket at once. Each direction admits one
/// operation at a time through its `DirectionGate` (a listener's accepts use the read gate); the
/// others queue in FIFO order. `perform` holds the turn for one operation (a read, an accept, a
/// datagram), the stream writes for the whole write-all loop, so whole writes never interleave.
/// This is also what keeps the registration's one waiter slot per direction sufficient.
///
/// `ownerSlot` holds a retained pointer to the IOThread, or to the shared `Registration` with the
/// low bit set (objects are at least 16-byte aligned).
final class SocketHandle: @unchecked Sendable {
    // Thread-safety: `fd` is immutable; `lifetime` and `ownerSlot` are atomics; `registration` is
    // read and written only on the owner's loop thread (and in deinit, which has exclusive access).
    let fd: CInt
    private let lifetime = Atomic<UInt64>(1)
    private static let closedBit: UInt64 = 1 << 63
    /// Set by the one caller that closes the fd, so that a use taken (and refused) after the close
    /// cannot close the same number again when it drops back to zero.
    private static let releasedBit: UInt64 = 1 << 62
    private let ownerSlot = Atomic<UnsafeMutableRawPointer?>(nil)
    /// The confined registration, made by the first wait on the owner's loop and never replaced.
    /// Retained by hand (released in deinit) and read unretained: the socket keeps it alive, and
    /// reading a strong stored property into a local costs a retain/release pair, several per
    /// message on the data path.
    private var confinedRegistration: Unmanaged<Registration>?
    private var registration: Registration? { confinedRegistration?.takeUnretainedValue() }
    /// One operation per direction at a time, the others queued FIFO (see "Concurrent use").
    let readGate = DirectionGate()
    let writeGate = DirectionGate()

    /// Whether this is a stream socket: a hang-up or error ends a stream for good, so its readiness
    /// becomes sticky; a datagram socket keeps working after an error (see `Registration`).
    let isStream: Bool

    init(fd: CInt, isStream: Bool = true) {
        self.fd = fd
        self.isStream = isStream
    }

    /// Opens a non-blocking, close-on-exec socket.
    convenience init(family: CInt, type: CInt, operation: StaticString = "socket") throws(IOError) {
        let fd = try syscall(operation) { Glibc.socket(family, type | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0) }
        self.init(fd: fd, isStream: type == CInt(SOCK_STREAM.rawValue))
    }

    deinit {
        // No other reference exists, so no syscall is in flight and `registration` may be read
        // here. The loop's job must not capture `self` (it is being destroyed), only the registration.
        if lifetime.load(ordering: .acquiring) & SocketHandle.closedBit == 0 {
            switch currentOwner {
            case .loop(let owner)?:
                if let registration { owner.execute { owner.reactor.deregister(registration, .closed) } }
            case .shared(let registration)?:
                registration.sharedReactor?.deregister(registration, .closed)
            case nil:
                break
            }
            Glibc.close(fd)
        }
        if let pointer = ownerSlot.load(ordering: .acquiring) {
            SocketHandle.releaseOwner(pointer)
        }
        confinedRegistration?.release()
    }

    /// Where the socket waits (see "Ownership").
    private enum Owner {
        case loop(IOThread)
        case shared(Registration)
    }

    private static let sharedTag: UInt = 1

    private static func decode(_ pointer: UnsafeMutableRawPointer) -> Owner {
        let bits = UInt(bitPattern: pointer)
        if bits & sharedTag == 0 {
            return .loop(Unmanaged<IOThread>.fromOpaque(pointer).takeUnretainedValue())
        }
        let untagged = UnsafeMutableRawPointer(bitPattern: bits & ~sharedTag)!
        return .shared(Unmanaged<Registration>.fromOpaque(untagged).takeUnretainedValue())
    }

    private static func releaseOwner(_ pointer: UnsafeMutableRawPointer) {
        let bits = UInt(bitPattern: pointer)
        if bits & sharedTag == 0 {
            Unmanaged<IOThread>.fromOpaque(pointer).release()
        } else {
            Unmanaged<Registration>.fromOpaque(UnsafeMutableRawPointer(bitPattern: bits & ~sharedTag)!).release()
        }
    }

    private var currentOwner: Owner? {
        ownerSlot.load(ordering: .acquiring).map(SocketHandle.decode)
    }

    /// Runs `body` with the fd while holding a use, or throws `EBADF` ("the socket is closed").
    @inline(__always)
    func withFD<Result>(
        _ operation: StaticString, _ body: (CInt) throws(IOError) -> Result
    ) throws(IOError) -> Result {
        let before = lifetime.wrappingAdd(1, ordering: .acquiring).oldValue
        defer { releaseUse() }
        guard before & SocketHandle.closedBit == 0 else { throw IOError.closed("\(operation)") }
        return try body(fd)
    }

    @inline(__always)
    private func releaseUse() {
        let after = lifetime.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if after == SocketHandle.closedBit,
            lifetime.compareExchange(
                expected: SocketHandle.closedBit, desired: SocketHandle.closedBit | SocketHandle.releasedBit,
                ordering: .acquiringAndReleasing
            ).exchanged
        {
            Glibc.close(fd)
        }
    }

    /// Whether `close()` has been called (by anyone, on any thread). Once true, stays true.
    var isClosed: Bool { lifetime.load(ordering: .acquiring) & SocketHandle.closedBit != 0 }

    /// Closes the socket: pending operations fail with `EBADF` ("the socket is closed"), later ones
    /// too. Idempotent; any thread; does not wait.
    func close() {
        var current = lifetime.load(ordering: .relaxed)
        while true {
            if current & SocketHandle.closedBit != 0 { return }
            let (exchanged, original) = lifetime.compareExchange(
                expected: current, desired: current | SocketHandle.closedBit, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        deregister()
        readGate.failQueued()
        writeGate.failQueued()
        releaseUse()  // the open reference
    }

    /// Fails the waiters and clears the reactor slot, on the owner's loop (or at once, if shared).
    private func deregister() {
        let owner: IOThread
        switch currentOwner {
        case nil:
            return
        case .shared(let registration)?:
            registration.sharedReactor?.deregister(registration, .closed)
            return
        case .loop(let loop)?:
            owner = loop
        }
        if owner.isCurrent {
            if let registration {
                owner.reactor.deregister(registration, .closed)
            }
        } else {
            // `registration` is owner-confined: read it on the owner, in the job.
            owner.execute { [self] in
                if let registration { owner.reactor.deregister(registration, .closed) }
            }
        }
    }

    /// Where the socket waits, choosing it now if this is the first operation (see "Ownership").
    ///
    /// Several tasks may make their first operations at once (a reader and a writer starting
    /// together). The owner is published first, by one compare-exchange; only its winner adds a
    /// shared registration to the epoll set, so no one else meets `EEXIST`. A loser may use the
    /// registration before it is added: it tries its syscall, and an edge that comes before the
    /// add is reported by the add itself (epoll reports current readiness on `EPOLL_CTL_ADD`).
    private func owner(_ operation: StaticString) throws(IOError) -> Owner {
        if let pointer = ownerSlot.load(ordering: .acquiring) { return SocketHandle.decode(pointer) }
        let candidate: UnsafeMutableRawPointer
        var sharedRegistration: (Registration, Reactor)?
        switch ExecutionContext.current {
        case .workStealingPool(let pool):
            let reactor = pool.driver.reactor
            let registration = reactor.makeRegistration(fd: fd, loop: nil, isStream: isStream)
            sharedRegistration = (registration, reactor)
            let bits = UInt(bitPattern: Unmanaged.passRetained(registration).toOpaque()) | SocketHandle.sharedTag
            candidate = UnsafeMutableRawPointer(bitPattern: bits)!
        case .ioThread(let thread):
            candidate = Unmanaged.passRetained(thread).toOpaque()
        case .elsewhere:
            candidate = Unmanaged.passRetained(IOThreadPool.default.next()).toOpaque()
        }
        let (exchanged, winner) = ownerSlot.compareExchange(
            expected: nil, desired: candidate, ordering: .acquiringAndReleasing)
        guard exchanged else {
            SocketHandle.releaseOwner(candidate)  // never added anywhere
            return SocketHandle.decode(winner!)
        }
        if let (registration, reactor) = sharedRegistration {
            try addPublished(registration, to: reactor, operation)
        }
        return SocketHandle.decode(candidate)
    }

    /// Adds the shared registration this socket just published. It stays published whatever
    /// happens (others may already hold it, unretained), so a failure fails it for good: the
    /// operations already waiting on it, and every later one, throw the same error.
    private func addPublished(_ registration: Registration, to reactor: Reactor, _ operation: StaticString) throws(IOError) {
        do {
            try withFD(operation) { (fd) throws(IOError) in try reactor.add(registration) }
        } catch {
            registration.fail(.unregistered(errno: error.errno, detail: error.detail))
            throw error
        }
        // Closed while adding: `close()` may have deregistered before the add, which would leave
        // the registration in the table and the epoll set.
        if lifetime.load(ordering: .acquiring) & SocketHandle.closedBit != 0 {
            reactor.remove(registration)
        }
    }

    /// The registration, created on first use. Owner's loop thread only.
    private func registrationOnOwner(_ owner: IOThread, _ operation: StaticString) throws(IOError) -> Registration {
        if let registration { return registration }
        let created = try withFD(operation) { (fd) throws(IOError) in try owner.reactor.register(fd: fd, loop: owner, isStream: isStream) }
        confinedRegistration = Unmanaged.passRetained(created)
        return created
    }

    /// Performs a non-blocking operation, waiting for readiness as often as needed, holding
    /// `interest`'s turn (queued behind other operations of that direction; see "Concurrent use").
    ///
    /// On the owner's thread, a cleared readiness flag skips the syscall and suspends at once.
    /// Elsewhere the syscall is tried first where the caller runs; if it would block, the rest of
    /// the operation (its waits and retries) hops to the owner (see `finishOnOwner`).
    /// Inlined (with `performHoldingTurn`'s data path): no task frame on the data path.
    @inline(__always)
    nonisolated(nonsending)
    func perform<Value>(
        _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) async throws -> Value {
        try await enterTurn(interest, operation)
        defer { leaveTurn(interest) }
        return try await performHoldingTurn(interest, operation, attempt)
    }

    /// Takes `interest`'s turn: one compare-exchange when nobody holds it.
    @inline(__always)
    nonisolated(nonsending)
    func enterTurn(_ interest: Registration.Interest, _ operation: StaticString) async throws {
        switch interest {
        case .read: if !readGate.tryEnter() { try await readGate.enter(operation) }
        case .write: if !writeGate.tryEnter() { try await writeGate.enter(operation) }
        }
    }

    @inline(__always)
    func leaveTurn(_ interest: Registration.Interest) {
        switch interest {
        case .read: readGate.leave()
        case .write: writeGate.leave()
        }
    }

    /// `perform` for a caller that already holds `interest`'s turn (a write-all loop).
    ///
    /// The data path (a registered socket, on its owner's loop or shared) is inlined into the
    /// caller: calling an async function that is not inlined allocates its frame on the task, and a
    /// stream read calls this once per message (callgrind over the echo server: one task allocation
    /// and ~120 instructions per message fewer). The first operation, and any off the owner's
    /// loop, go to `performFirstOrOffOwner`, which comes back here once the socket is registered.
    @inline(__always)
    nonisolated(nonsending)
    func performHoldingTurn<Value>(
        _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) async throws -> Value {
        while true {
            // The data path: the socket's owner is known (see "Ownership"), found without
            // decoding the owner slot or counting references.
            if let registration = registrationIfOnOwner() {
                if let value = try attemptOnOwner(registration, interest, operation, attempt) { return value }
                try await registration.takeUnretainedValue().waitReady(interest, operation: operation)
                continue
            }
            if let registration = sharedRegistration() {
                // Note the edge count first: an edge after it ends the wait at once (see `Registration`).
                let observed = try registration.observe(interest, operation)
                if !observed.drained {
                    switch try withFD(operation, attempt) {
                    case .complete(let value):
                        return value
                    case .drained(let value):
                        registration.noteDrained(interest, at: observed.edges)
                        return value
                    case .wouldBlock:
                        break
                    }
                }
                try await registration.waitForEdge(interest, after: observed.edges, operation: operation)
                continue
            }
            return try await performFirstOrOffOwner(interest, operation, attempt)
        }
    }

    /// `performHoldingTurn` off its data path: the first operation (which chooses the owner), or
    /// one off the owner's loop. Not inlined: it is rare.
    @inline(never)
    nonisolated(nonsending)
    private func performFirstOrOffOwner<Value>(
        _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) async throws -> Value {
        switch try self.owner(operation) {
        case .shared:
            return try await performHoldingTurn(interest, operation, attempt)  // now on the shared path
        case .loop(let owner) where owner.isCurrent:
            _ = try registrationOnOwner(owner, operation)
            return try await performHoldingTurn(interest, operation, attempt)  // now on the owner's path
        case .loop(let owner):
            // Checked before the syscall too: whether data happens to be there must not
            // decide between a result and an error on a socket whose loop has stopped.
            guard !owner.isStopped else { throw IOError.loopStopped("\(operation)") }
            if let value = try attemptAnywhere(operation, attempt) { return value }
            guard !owner.isStopped else { throw IOError.loopStopped("\(operation)") }
            return try await withTaskExecutorPreference(owner) {
                try await self.finishOnOwner(owner, interest, operation, attempt)
            }
        }
    }

    /// Tries the operation once, without waiting: `nil` means it would block. Keeps the readiness
    /// bookkeeping of `perform`, so a caller can try synchronously first and `perform` only if
    /// needed (every `await` on the data path costs a runtime executor check). The caller holds
    /// `interest`'s turn. Inlined: a synchronous write from `copy` calls it once per message.
    @inline(__always)
    func attemptNow<Value>(
        _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) throws(IOError) -> Value? {
        if let registration = registrationIfOnOwner() {
            return try attemptOnOwner(registration, interest, operation, attempt)
        }
        switch currentOwner {
        case .loop(let owner)?:
            // (On the owner with a registration, `registrationIfOnOwner` above took the call.)
            // As in `performHoldingTurn`: a stopped owner fails the call whether or not data is there.
            guard !owner.isStopped else { throw IOError.loopStopped("\(operation)") }
        case .shared(let registration)?:
            guard !(registration.sharedReactor?.hasStopped ?? false) else { throw IOError.poolStopped("\(operation)") }
        case nil:
            break
        }
        return try attemptAnywhere(operation, attempt)
    }

    /// The confined registration if the caller runs on the owner's loop and the socket has one:
    /// the data path's common case, found without decoding the owner or counting references (the
    /// owner slot holds the IOThread's address, which is what the loop thread's thread-local holds).
    ///
    /// Unretained: the socket holds it until its loop releases it, and this caller is on that
    /// loop; its synchronous uses borrow it (`attemptOnOwner`), saving a retain/release pair per
    /// attempt (two attempts per echoed message, callgrind).
    @inline(__always)
    private func registrationIfOnOwner() -> Unmanaged<Registration>? {
        guard let owner = ownerSlot.load(ordering: .acquiring), owner == ciopool_current_thread_get() else { return nil }
        return confinedRegistration
    }

    /// The shared registration, if the socket waits on a `WorkStealingPool`'s driver (read
    /// unretained: the owner slot holds it retained while the socket lives).
    @inline(__always)
    private func sharedRegistration() -> Registration? {
        guard let pointer = ownerSlot.load(ordering: .acquiring) else { return nil }
        let bits = UInt(bitPattern: pointer)
        guard bits & SocketHandle.sharedTag != 0 else { return nil }
        return Unmanaged<Registration>.fromOpaque(UnsafeRawPointer(bitPattern: bits & ~SocketHandle.sharedTag)!).takeUnretainedValue()
    }

    /// `attemptOnOwner` with the registration borrowed (see `registrationIfOnOwner`).
    @inline(__always)
    private func attemptOnOwner<Value>(
        _ registration: Unmanaged<Registration>, _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) throws(IOError) -> Value? {
        try registration._withUnsafeGuaranteedRef { registration in
            Result { () throws(IOError) in try attemptOnOwner(registration, interest, operation, attempt) }
        }.get()
    }

    /// One attempt on the owner's thread: skips the syscall while readiness is known to be clear,
    /// and clears it on EAGAIN or a drained buffer.
    @inline(__always)
    private func attemptOnOwner<Value>(
        _ registration: Registration, _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) throws(IOError) -> Value? {
        if let failure = registration.failure { throw failure.error(operation) }  // closed, or the loop drains
        guard registration.isReady(interest) else { return nil }
        switch try withFD(operation, attempt) {
        case .complete(let value):
            return value
        case .drained(let value):
            registration.setReady(interest, false)
            return value
        case .wouldBlock:
            registration.setReady(interest, false)
            return nil
        }
    }

    /// One attempt off the owner's thread (readiness lives on the owner; the syscall is tried).
    @inline(__always)
    private func attemptAnywhere<Value>(
        _ operation: StaticString, _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) throws(IOError) -> Value? {
        switch try withFD(operation, attempt) {
        case .complete(let value), .drained(let value): return value
        case .wouldBlock: return nil
        }
    }

    /// The rest of an operation whose first try, where the caller runs, would have blocked: tries
    /// and waits on the owner's loop until it completes. The caller has set the owner as the task
    /// executor preference; `hopToPreferredExecutor` moves the task there.
    ///
    /// Why the retries happen on the owner and not back where the caller runs: readiness is
    /// bookkept on the owner only. A wait that finds it set consumes it and lets the caller retry;
    /// retried elsewhere, a read that took part of the queued data would leave the flag cleared
    /// with data still queued, and the owner's next read would skip its syscall and wait for an
    /// edge that never comes. Tried here, the flag is cleared only by an EAGAIN or a drained buffer
    /// seen here.
    nonisolated(nonsending)
    private func finishOnOwner<Value>(
        _ owner: IOThread, _ interest: Registration.Interest, _ operation: StaticString,
        _ attempt: (CInt) throws(IOError) -> IOAttempt<Value>
    ) async throws -> Value {
        while true {
            guard owner.isCurrent else {
                // A stopped owner forwards jobs to the default pool: then we are not on it, and must not wait.
                guard !owner.isStopped else { throw IOError.loopStopped("\(operation)") }
                await SocketHandle.hopToPreferredExecutor()
                continue
            }
            let registration = try registrationOnOwner(owner, operation)
            if let value = try attemptOnOwner(registration, interest, operation, attempt) { return value }
            try await registration.waitReady(interest, operation: operation)
        }
    }

    /// Returns on the task's preferred executor (a `@concurrent` function runs there, and its
    /// nonisolated caller goes on where it returned).
    @concurrent
    private static func hopToPreferredExecutor() async {}

    // MARK: Socket options and addresses

    func setOption<Value: BitwiseCopyable>(level: CInt, name: CInt, _ value: Value, _ operation: StaticString) throws(IOError) {
        var value = value
        _ = try withFD(operation) { (fd) throws(IOError) in
            try syscall(operation) { setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Value>.size)) }
        }
    }

    func getOption<Value: FixedWidthInteger>(level: CInt, name: CInt, _ operation: StaticString) throws(IOError) -> Value {
        var value: Value = 0
        var length = socklen_t(MemoryLayout<Value>.size)
        _ = try withFD(operation) { (fd) throws(IOError) in
            try syscall(operation) { getsockopt(fd, level, name, &value, &length) }
        }
        return value
    }

    /// getsockname / getpeername.
    func address(
        _ operation: StaticString, _ call: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt
    ) throws(IOError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withFD(operation) { (fd) throws(IOError) in
            try syscall(operation) {
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
                }
            }
        }
        guard let address = SocketAddress(storage: storage, length: length) else {
            throw IOError(errno: .addressFamilyNotSupported, operation: "\(operation)", detail: "family \(storage.ss_family)")
        }
        return address
    }
}

// MARK: Test probe

extension SocketHandle {
    /// Whether a task waits on this socket for `interest` now (its operation is suspended in the
    /// reactor): tests use it to know that an operation is pending before they cancel or close it.
    /// Reads the registration where it lives: in a job on the owner's loop, or under the shared
    /// registration's lock. False before the first operation chose the owner.
    func hasWaiter(_ interest: Registration.Interest) async -> Bool {
        switch currentOwner {
        case nil:
            return false
        case .shared(let registration)?:
            return registration.hasWaiter(interest)
        case .loop(let owner)?:
            return await withCheckedContinuation { continuation in
                owner.execute { continuation.resume(returning: self.registration?.hasWaiter(interest) ?? false) }
            }
        }
    }
}
