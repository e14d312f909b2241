import Glibc
import SystemPackage

// Every syscall of the library goes through `rawSyscall` (DESIGN.md, "Rules of the house"): it
// retries EINTR and traps on errnos that can only be our bug. The helpers below turn the outcome
// into what callers need: an `IOError`, or "would block".

/// The outcome of one syscall after EINTR retries: its result, or the errno it failed with.
enum SyscallOutcome<Value> {
    case done(Value)
    case failed(Errno)
}

/// The outcome of a non-blocking syscall: a result, or "would block" (EAGAIN/EWOULDBLOCK).
enum NonBlocking<Value> {
    case done(Value)
    case wouldBlock
}

/// Runs a syscall that returns -1 on error, retrying EINTR. EBADF and EFAULT mean we passed a
/// closed descriptor or a bad pointer: a bug, never an I/O condition, so they trap.
@inline(__always)
func rawSyscall<T: FixedWidthInteger>(_ operation: StaticString, _ body: () -> T) -> SyscallOutcome<T> {
    while true {
        let result = body()
        if result != -1 { return .done(result) }
        let code = Glibc.errno
        if code == EINTR { continue }
        if code == EBADF || code == EFAULT {
            // Through `misuse`, so that the message survives -O: the usual cause is a caller's
            // descriptor closed behind the library's back.
            misuse("\(operation) failed with \(Errno(rawValue: code)): a file descriptor closed behind swift-iopool's back, or a bug in swift-iopool")
        }
        return .failed(Errno(rawValue: code))
    }
}

/// Runs a syscall; throws `IOError` (with `operation`, or `describedAs` when given) on failure.
@inline(__always)
func syscall<T: FixedWidthInteger>(
    _ operation: StaticString, describedAs description: @autoclosure () -> String? = nil, _ body: () -> T
) throws(IOError) -> T {
    switch rawSyscall(operation, body) {
    case .done(let value): return value
    case .failed(let errno): throw IOError(errno: errno, operation: description() ?? "\(operation)")
    }
}

/// Runs a syscall on a non-blocking descriptor: EAGAIN becomes `.wouldBlock`.
@inline(__always)
func nonBlockingSyscall<T: FixedWidthInteger>(
    _ operation: StaticString, _ body: () -> T
) throws(IOError) -> NonBlocking<T> {
    switch rawSyscall(operation, body) {
    case .done(let value): return .done(value)
    case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock: return .wouldBlock
    case .failed(let errno): throw IOError(errno: errno, operation: "\(operation)")
    }
}
