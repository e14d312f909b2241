import Glibc
import SystemPackage

// Every syscall of the library goes through these wrappers (DESIGN.md, "Rules of the house"):
// they retry EINTR, turn errno into `IOError`, and trap on errnos that can only be our bug.

/// The outcome of a non-blocking syscall: a result, or "would block" (EAGAIN/EWOULDBLOCK).
@usableFromInline
enum NonBlocking<Value> {
    case done(Value)
    case wouldBlock
}

@inline(__always)
private func preconditionAcceptable(_ code: CInt, _ operation: StaticString) {
    // EBADF and EFAULT mean we passed a closed fd or a bad pointer: a bug, never an I/O condition.
    if code == EBADF || code == EFAULT {
        preconditionFailure(
            "\(operation) failed with \(Errno(rawValue: code)): a bug in swift-iopool, or a file descriptor closed behind its back")
    }
}

/// Runs a syscall that returns -1 on error. Retries EINTR; throws `IOError` for other errnos.
@inline(__always)
func syscall<T: FixedWidthInteger>(_ operation: StaticString, _ body: () -> T) throws(IOError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        preconditionAcceptable(code, operation)
        throw IOError(errno: Errno(rawValue: code), operation: "\(operation)")
    }
}

/// Runs a syscall on a non-blocking fd: EAGAIN becomes `.wouldBlock`, EINTR is retried.
@inline(__always)
func nonBlockingSyscall<T: FixedWidthInteger>(
    _ operation: StaticString, _ body: () -> T
) throws(IOError) -> NonBlocking<T> {
    while true {
        let result = body()
        if result != -1 { return .done(result) }
        let code = Glibc.errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        preconditionAcceptable(code, operation)
        throw IOError(errno: Errno(rawValue: code), operation: "\(operation)")
    }
}
