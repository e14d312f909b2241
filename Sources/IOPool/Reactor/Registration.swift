import CIOPoolShims
import Glibc
import Synchronization
import SystemPackage

/// One suspended reader or writer: the task's continuation and an id, so that a late cancellation
/// or close can tell whether the waiter it targets is still the one in the slot.
struct Waiter {
    let id: UInt64
    let continuation: UnsafeContinuation<Void, any Error>
    /// What the task waits to do ("read", "accept", ...), for the error if the wait fails.
    let operation: StaticString
    /// The `TaskIOCancellation` scope that can cancel this waiter, if any.
    var scope: ObjectIdentifier? = nil
}

/// A file descriptor's registration with a reactor: edge-triggered readiness and at most one
/// waiting reader and one waiting writer (the socket's `DirectionGate`s let one operation per
/// direction at a time reach the registration, and queue the others).
///
/// Two modes, one type:
/// - **Confined** (`loop != nil`): registered with an IOThread's reactor. Every stored property is
///   read and written only on that loop's OS thread; other threads reach the registration only by
///   enqueueing a job on the loop. No locks on the data path.
/// - **Shared** (`loop == nil`, `lock != nil`): registered with a `WorkStealingPool`'s shared
///   driver, which any worker may poll while tasks on other threads wait. Every mutable property is
///   touched only with `lock` held, and continuations are resumed after it is released. Readiness is
///   an edge *count* per direction instead of a flag: an operation notes the count, tries its
///   syscall, and on EAGAIN waits for a count above the one it noted. A flag would lose an edge that
///   arrives between the EAGAIN and the wait (the poller runs on another thread); tokio's readiness
///   "tick" solves the same race.
///
/// That is why this class may be `@unchecked Sendable`.
///
/// Readiness (`readReady`/`writeReady`) means "an edge may have arrived since someone last saw
/// EAGAIN". The loop sets it on every event; an operation on the loop thread clears it when the
/// kernel says "would block" or returns a short read (tokio does the same: with epoll a short read
/// proves the socket buffer was drained). A cleared flag lets the next operation suspend without a
/// syscall that would only return EAGAIN.
final class Registration: @unchecked Sendable {
    let fd: CInt
    let id: UInt32
    /// `unowned(unsafe)`: the socket that owns this registration retains its IOThread, and whoever
    /// holds a registration (the socket, a waiting task's cancellation scope) keeps that socket or
    /// its thread alive; checked `unowned` cost a reference-count operation on every wait.
    /// nil for a registration with a shared driver.
    unowned(unsafe) let loop: IOThread?
    /// The shared-mode lock (nil when confined).
    private let lock: PThreadMutex?
    /// The shared reactor this registration belongs to (nil when confined). A strong reference: the
    /// socket closes through it; the reactor's table drops the registration on deregistration, which
    /// breaks the cycle.
    let sharedReactor: Reactor?
    /// Shared mode: edges seen per direction (see the type's comment), and the next waiter id.
    /// Per direction: the count of edges seen, with `closedBit` set once the direction is closed
    /// for good (a stream's RDHUP, HUP, ERR: sticky, as `readClosed` in confined mode). Written
    /// only with `lock` held (with the waiter slots), read without it by `observe`: one atomic load
    /// instead of a lock per operation.
    private let readEdges = Atomic<UInt64>(0)
    private let writeEdges = Atomic<UInt64>(0)
    private static let closedBit: UInt64 = 1 << 63
    /// Shared mode: the edge count at which an operation last drained the kernel buffer (see
    /// `observe`); `UInt64.max` when none did. Not under `lock`: only the operation holding the
    /// direction's turn reads or writes it (the socket's gate orders them, across threads too).
    private var readDrainedAt = UInt64.max
    private var writeDrainedAt = UInt64.max
    private var nextWaiterID: UInt64 = 0

    var readReady = true
    var writeReady = true
    /// Sticky, for stream sockets: the peer closed its side (RDHUP), or the connection hung up or
    /// failed (HUP, ERR). With edge-triggered epoll such an event may arrive together with the last
    /// data; a short read of that data must not clear readiness, or the next read would wait for
    /// an edge that never comes (tokio keeps the same "read closed" bit). Datagram sockets never set
    /// them: a UDP socket keeps working after an error (ECONNREFUSED is reported once), and sticky
    /// readiness would make every later wait retry without suspending.
    private var readClosed = false
    private var writeClosed = false
    private let isStream: Bool
    var reader: Waiter?
    var writer: Waiter?
    /// The scope of the last task that waited per direction (see `ScopeCache`); each is touched
    /// only by the operation holding that direction's turn.
    private var readScopeCache = ScopeCache()
    private var writeScopeCache = ScopeCache()

    @inline(__always)
    private func scopeOfCurrentTask(_ interest: Interest) -> TaskIOCancellation? {
        let (scope, refreshed) = TaskIOCancellation.forCurrentTask(cached: interest == .read ? readScopeCache : writeScopeCache)
        if let refreshed {
            if interest == .read { readScopeCache = refreshed } else { writeScopeCache = refreshed }
        }
        return scope
    }
    /// Set once deregistered (closed, or the loop/driver stopped): later waits fail with it.
    private(set) var failure: Failure?
    /// Whether `failure` is set, readable without the lock (shared mode's `observe`).
    private let hasFailed = Atomic<Bool>(false)
    var isActive: Bool { failure == nil }

    /// A confined registration (for `loop`'s reactor), or a shared one when `loop` is nil.
    init(fd: CInt, id: UInt32, loop: IOThread?, sharedReactor: Reactor?, isStream: Bool) {
        self.fd = fd
        self.id = id
        self.loop = loop
        self.sharedReactor = sharedReactor
        self.isStream = isStream
        lock = loop == nil ? PThreadMutex() : nil
    }

    deinit {
        lock?.destroy()
    }

    var isShared: Bool { lock != nil }

    /// Runs `body` with the shared-mode lock held. Shared registrations only.
    @inline(__always)
    private func locked<Result>(_ body: () -> Result) -> Result {
        lock!.lock()
        defer { lock!.unlock() }
        return body()
    }

    enum Interest: Sendable { case read, write }

    func isReady(_ interest: Interest) -> Bool {
        interest == .read ? readReady : writeReady
    }

    func setReady(_ interest: Interest, _ ready: Bool) {
        if interest == .read { readReady = ready || readClosed } else { writeReady = ready || writeClosed }
    }

    /// Called by the reactor for an epoll event on this registration (on the loop, or, shared, by
    /// the worker polling the driver).
    func handle(events: UInt32) {
        let readable = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue
        let writable = EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue
        guard isShared else {
            if isStream {
                if events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { readClosed = true }
                if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { writeClosed = true }
            }
            if events & readable != 0 {
                readReady = true
                if let waiter = reader {
                    reader = nil
                    waiter.continuation.resume()
                }
            }
            if events & writable != 0 {
                writeReady = true
                if let waiter = writer {
                    writer = nil
                    waiter.continuation.resume()
                }
            }
            return
        }
        let (wokenReader, wokenWriter) = locked { () -> (Waiter?, Waiter?) in
            var woken: (Waiter?, Waiter?) = (nil, nil)
            // Sticky, as in confined mode: a drained direction of a closed stream must not wait.
            let closesRead = isStream && events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            let closesWrite = isStream && events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            if events & readable != 0 {
                let word = readEdges.load(ordering: .relaxed)
                readEdges.store((word &+ 1) | (closesRead ? Registration.closedBit : 0), ordering: .releasing)
                woken.0 = reader
                reader = nil
            }
            if events & writable != 0 {
                let word = writeEdges.load(ordering: .relaxed)
                writeEdges.store((word &+ 1) | (closesWrite ? Registration.closedBit : 0), ordering: .releasing)
                woken.1 = writer
                writer = nil
            }
            return woken
        }
        wokenReader?.continuation.resume()
        wokenWriter?.continuation.resume()
    }

    // MARK: Shared mode

    /// Edges seen so far in `interest`'s direction, and whether the caller may skip its syscall
    /// and wait at once: the last operation of this direction drained the kernel buffer (a short
    /// read or send) at this same edge count, and the direction is not closed for good. Or throws
    /// the registration's failure (the socket closed, the pool stopped), so that no syscall is
    /// tried on a dead registration. Shared registrations only; the caller holds `interest`'s turn.
    ///
    /// The skip is the shared form of the confined mode's cleared readiness flag (without it,
    /// every echoed message cost one more `read` that returned EAGAIN).
    @inline(__always)
    func observe(_ interest: Interest, _ operation: StaticString) throws(IOError) -> (edges: UInt64, drained: Bool) {
        if hasFailed.load(ordering: .acquiring), let failure = locked({ failure }) { throw failure.error(operation) }
        let word = edgeWord(interest)
        let drainedAt = interest == .read ? readDrainedAt : writeDrainedAt
        return (word, drainedAt == word && word & Registration.closedBit == 0)
    }

    @inline(__always)
    private func edgeWord(_ interest: Interest) -> UInt64 {
        interest == .read ? readEdges.load(ordering: .acquiring) : writeEdges.load(ordering: .acquiring)
    }

    /// Records that an operation which observed `edges` (`observe`) drained the kernel buffer.
    /// Shared registrations only; the caller holds `interest`'s turn.
    func noteDrained(_ interest: Interest, at edges: UInt64) {
        if interest == .read { readDrainedAt = edges } else { writeDrainedAt = edges }
    }

    /// Suspends the calling task until an edge newer than `observed` (a value of `edges(_:)` taken
    /// before the syscall that returned EAGAIN) arrives, or throws `CancellationError`, or the
    /// registration's failure. Shared registrations only; any thread.
    ///
    /// Cancellation safety: the waiter is installed under the lock only if the task (or its
    /// `TaskIOCancellation` scope) is not cancelled at that moment, and cancellers remove it under
    /// the same lock, so either the canceller finds the waiter or the install sees the cancellation.
    @inline(__always)  // into `SocketHandle.perform`: one task-frame allocation fewer per wait
    nonisolated(nonsending)
    func waitForEdge(_ interest: Interest, after observed: UInt64, operation: StaticString) async throws {
        if let scope = scopeOfCurrentTask(interest) {
            guard scope.beginWait(on: self) else { throw CancellationError() }
            defer { scope.endWait() }
            // The executor-inheriting form, as in `waitReady` (two status-record locks fewer).
            try await _unsafeInheritExecutor_withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                installShared(continuation, interest, observed, operation, scope: scope)
            }
            return
        }
        let id = locked { () -> UInt64 in
            nextWaiterID &+= 1
            return nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                installShared(continuation, interest, observed, operation, scope: nil, id: id)
            }
        } onCancel: {
            self.cancelWaiter(id: id)
        }
    }

    private func installShared(
        _ continuation: UnsafeContinuation<Void, any Error>, _ interest: Interest, _ observed: UInt64,
        _ operation: StaticString, scope: TaskIOCancellation?, id: UInt64 = 0
    ) {
        enum Outcome { case installed, ready, cancelled, failed(IOError) }
        let outcome = locked { () -> Outcome in
            if let failure { return .failed(failure.error(operation)) }
            if edgeWord(interest) != observed { return .ready }
            if let scope {
                if scope.isCancelled { return .cancelled }
            } else if withUnsafeCurrentTask(body: { $0?.isCancelled ?? false }) {
                return .cancelled
            }
            var waiterID = id
            if scope != nil {
                nextWaiterID &+= 1
                waiterID = nextWaiterID
            }
            install(Waiter(id: waiterID, continuation: continuation, operation: operation, scope: scope.map(ObjectIdentifier.init)), interest)
            return .installed
        }
        switch outcome {
        case .installed: break
        case .ready: continuation.resume()
        case .cancelled: continuation.resume(throwing: CancellationError())
        case .failed(let error): continuation.resume(throwing: error)
        }
    }

    // MARK: Confined mode

    /// Suspends the calling task until the fd may be ready for `interest`, or throws
    /// `CancellationError` (task cancelled), or the error given to `fail(_:)` (close, shutdown).
    ///
    /// Must be called on `loop`'s thread. If readiness arrived since it was last cleared, it is
    /// consumed and the call returns at once, so the caller retries its syscall.
    ///
    /// Cancellation safety: a cancellation handler never touches the slot itself; it enqueues a
    /// job on the loop, which runs after this job has installed the waiter, and which resumes the
    /// waiter only if its id (or its scope, for tasks started by `spawn`: `TaskIOCancellation`)
    /// still matches. Every path resumes the continuation exactly once.
    @inline(__always)  // into `SocketHandle.perform`: one task-frame allocation fewer per wait
    nonisolated(nonsending)
    func waitReady(_ interest: Interest, operation: StaticString) async throws {
        let loop = self.loop!
        if isReady(interest) {
            setReady(interest, false)
            return
        }
        if let failure { throw failure.error(operation) }
        if let scope = scopeOfCurrentTask(interest) {
            // A task started by `spawn`: its one cancellation handler covers this wait.
            guard scope.beginWait(on: self) else { throw CancellationError() }
            defer { scope.endWait() }
            let tag = ObjectIdentifier(scope)
            // The executor-inheriting form: `withUnsafeThrowingContinuation(isolation:)` hops to
            // the isolation before suspending and again after resuming, two `swift_task_switch`
            // that each take the task's status-record lock to read its executor preference (about
            // 300 instructions per echoed message, callgrind). The continuation resumes the task on
            // the executor it suspended on either way.
            try await _unsafeInheritExecutor_withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                install(Waiter(id: loop.reactor.makeWaiterID(), continuation: continuation, operation: operation, scope: tag), interest)
            }
            return
        }
        let id = loop.reactor.makeWaiterID()
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                install(Waiter(id: id, continuation: continuation, operation: operation), interest)
            }
        } onCancel: {
            loop.execute { self.cancelWaiter(id: id) }
        }
    }

    private func install(_ waiter: Waiter, _ interest: Interest) {
        switch interest {
        case .read:
            // An invariant, not a caller's misuse: SocketHandle's read gate admits one operation.
            precondition(reader == nil, "two waiting readers on fd \(fd): the direction gate let two operations through")
            reader = waiter
        case .write:
            precondition(writer == nil, "two waiting writers on fd \(fd): the direction gate let two operations through")
            writer = waiter
        }
    }

    // MARK: Both modes

    /// Resumes with `CancellationError` the waiters that `scope` may cancel (see
    /// `TaskIOCancellation`). Any thread: a confined registration does it in a job on its loop.
    func cancelWaitersFromAnyThread(scope: ObjectIdentifier, releasing retained: Unmanaged<Registration>) {
        if let loop {
            loop.execute {
                let registration = retained.takeRetainedValue()
                registration.cancelWaiters(scope: scope)
            }
        } else {
            cancelWaiters(scope: scope)
            retained.release()
        }
    }

    private func cancelWaiters(scope: ObjectIdentifier) {
        for case let waiter? in takeWaiters({ $0.scope == scope }) {
            waiter.continuation.resume(throwing: CancellationError())
        }
    }

    /// Confined: on the loop. Shared: any thread.
    private func cancelWaiter(id: UInt64) {
        for case let waiter? in takeWaiters({ $0.id == id }) {
            waiter.continuation.resume(throwing: CancellationError())
        }
    }

    /// Removes the waiters matching `predicate` (under the lock when shared).
    private func takeWaiters(_ predicate: (Waiter) -> Bool) -> [Waiter?] {
        lock?.lock()
        defer { lock?.unlock() }
        var taken: [Waiter?] = []
        if let waiter = reader, predicate(waiter) {
            reader = nil
            taken.append(waiter)
        }
        if let waiter = writer, predicate(waiter) {
            writer = nil
            taken.append(waiter)
        }
        return taken
    }

    /// Why waits end without readiness.
    enum Failure: Equatable {
        /// The socket was closed.
        case closed
        /// The IOThread's loop shut down.
        case loopStopped
        /// The WorkStealingPool owning the shared driver shut down.
        case poolStopped
        /// The registration could not be added to the epoll set (after it was published to other
        /// tasks; see `SocketHandle.owner`): its operations fail with the add's error.
        case unregistered(errno: Errno, detail: String?)

        func error(_ operation: StaticString) -> IOError {
            switch self {
            case .closed: .closed("\(operation)")
            case .loopStopped: .loopStopped("\(operation)")
            case .poolStopped: .poolStopped("\(operation)")
            case .unregistered(let errno, let detail): IOError(errno: errno, operation: "\(operation)", detail: detail)
            }
        }
    }

    /// Resumes both waiters with the error for `failure` (naming each one's operation) and marks
    /// the registration inactive: later waits fail the same way.
    func fail(_ failure: Failure) {
        let markFailed = { () -> [Waiter?] in
            if self.failure == nil {
                self.failure = failure
                self.hasFailed.store(true, ordering: .releasing)
            }
            defer { (self.reader, self.writer) = (nil, nil) }
            return [self.reader, self.writer]
        }
        let taken = isShared ? locked(markFailed) : markFailed()
        for case let waiter? in taken {
            waiter.continuation.resume(throwing: failure.error(waiter.operation))
        }
    }
}

// MARK: Test probe

extension Registration {
    /// Whether a task waits for `interest` now. Confined: on the loop's thread; shared: any thread.
    func hasWaiter(_ interest: Interest) -> Bool {
        let waiting = { interest == .read ? self.reader != nil : self.writer != nil }
        return isShared ? locked(waiting) : waiting()
    }
}
