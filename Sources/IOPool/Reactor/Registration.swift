import CIOPoolShims
import Glibc

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

/// A file descriptor's registration with one IOThread's reactor: edge-triggered readiness and at
/// most one waiting reader and one waiting writer.
///
/// Thread-safety: every stored property is read and written only on the owning IOThread's OS thread
/// (`loop`). Other threads reach a registration only by enqueueing a job on that loop, which is
/// why this class may be `@unchecked Sendable`.
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
    unowned(unsafe) let loop: IOThread

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
    /// False once deregistered: late wake-ups and waits see it.
    var isActive = true

    init(fd: CInt, id: UInt32, loop: IOThread, isStream: Bool) {
        self.fd = fd
        self.id = id
        self.loop = loop
        self.isStream = isStream
    }

    enum Interest: Sendable { case read, write }

    func isReady(_ interest: Interest) -> Bool {
        interest == .read ? readReady : writeReady
    }

    func setReady(_ interest: Interest, _ ready: Bool) {
        if interest == .read { readReady = ready || readClosed } else { writeReady = ready || writeClosed }
    }

    /// Called by the reactor for an epoll event on this registration.
    func handle(events: UInt32) {
        let readable = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue
        let writable = EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue
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
    }

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
    nonisolated(nonsending)
    func waitReady(_ interest: Interest, operation: StaticString) async throws {
        if isReady(interest) {
            setReady(interest, false)
            return
        }
        guard isActive else { throw IOError.closed("\(operation)") }
        if let scope = TaskIOCancellation.forCurrentTask() {
            // A task started by `spawn`: its one cancellation handler covers this wait.
            try scope.beginWait(on: self)
            defer { scope.endWait() }
            let tag = ObjectIdentifier(scope)
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
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
            self.loop.execute { self.cancelWaiter(id: id) }
        }
    }

    private func install(_ waiter: Waiter, _ interest: Interest) {
        switch interest {
        case .read:
            precondition(reader == nil, "two tasks are reading from fd \(fd) at once; a socket supports one reader and one writer at a time")
            reader = waiter
        case .write:
            precondition(writer == nil, "two tasks are writing to fd \(fd) at once; a socket supports one reader and one writer at a time")
            writer = waiter
        }
    }

    /// Resumes with `CancellationError` the waiters that `scope` may cancel (see `TaskIOCancellation`).
    func cancelWaiters(scope: ObjectIdentifier) {
        if let waiter = reader, waiter.scope == scope {
            reader = nil
            waiter.continuation.resume(throwing: CancellationError())
        }
        if let waiter = writer, waiter.scope == scope {
            writer = nil
            waiter.continuation.resume(throwing: CancellationError())
        }
    }

    private func cancelWaiter(id: UInt64) {
        if let waiter = reader, waiter.id == id {
            reader = nil
            waiter.continuation.resume(throwing: CancellationError())
        } else if let waiter = writer, waiter.id == id {
            writer = nil
            waiter.continuation.resume(throwing: CancellationError())
        }
    }

    /// Why waits end without readiness.
    enum Failure {
        /// The socket was closed.
        case closed
        /// The loop shut down.
        case loopStopped

        func error(_ operation: StaticString) -> IOError {
            self == .closed ? .closed("\(operation)") : .loopStopped("\(operation)")
        }
    }

    /// Resumes both waiters with the error for `failure` (naming each one's operation) and marks
    /// the registration inactive.
    func fail(_ failure: Failure) {
        isActive = false
        if let waiter = reader {
            reader = nil
            waiter.continuation.resume(throwing: failure.error(waiter.operation))
        }
        if let waiter = writer {
            writer = nil
            waiter.continuation.resume(throwing: failure.error(waiter.operation))
        }
    }
}
