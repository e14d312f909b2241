import SystemPackage

/// The one error type of swift-iopool's I/O: the `errno` the kernel returned and the operation that failed.
///
/// ```swift
/// do {
///     try await stream.write(bytes)
/// } catch let error as IOError where error.errno == .connectionReset {
///     // the peer reset the connection
/// }
/// ```
///
/// Errors that are not the kernel's (a socket closed while a read was pending, an ``IOThread`` that
/// shut down under a pending operation) reuse the closest errno (`EBADF`, `ECANCELED`) and say so in
/// ``detail``.
public struct IOError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The error number, as swift-system's `Errno`.
    public var errno: Errno
    /// The operation that failed, e.g. `"read"`, `"accept"`, `"connect to 127.0.0.1:80"`.
    public var operation: String
    /// More context, when the errno alone would mislead.
    public var detail: String?

    public init(errno: Errno, operation: String, detail: String? = nil) {
        self.errno = errno
        self.operation = operation
        self.detail = detail
    }

    public var description: String {
        var text = "\(operation) failed: \(errno) (errno \(errno.rawValue))"
        if let detail { text += ": \(detail)" }
        return text
    }

    /// The socket was closed (by ``StreamSocket/close()`` or the listener's `close()`) while the operation
    /// was pending, or the operation was started after the close.
    static func closed(_ operation: String) -> IOError {
        IOError(errno: .badFileDescriptor, operation: operation, detail: "the socket is closed")
    }

    /// The IOThread the operation waits on (the one a socket registered with, or whose timers a
    /// sleep uses) has shut down.
    static func loopStopped(_ operation: String) -> IOError {
        IOError(
            errno: .canceled, operation: operation,
            detail: "the IOThread it waits on has shut down (a socket stays with the thread that first awaited it)")
    }

    /// The WorkStealingPool whose shared driver the operation waits on has shut down.
    static func poolStopped(_ operation: String) -> IOError {
        IOError(errno: .canceled, operation: operation, detail: "the WorkStealingPool it waits on has shut down")
    }
}

/// Errors of the pools themselves (not of I/O).
public enum IOPoolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `spawn` was called on a pool that has shut down.
    case shutDown(pool: String)
    /// The OS refused to start a pool thread (`pthread_create` failed).
    case threadStartFailed(name: String, errno: Errno)
    /// A configuration value is out of range.
    case invalidConfiguration(String)
    /// A pool's epoll reactor could not be created (e.g. `EMFILE`).
    case reactorFailed(IOError)
    /// ``WorkStealingPool/unsafeInstallAsGlobalExecutor(configuration:)`` did not install the pool;
    /// the reason says why (called twice, or another library's hook is in place).
    case globalExecutorInstallFailed(String)

    public var description: String {
        switch self {
        case .shutDown(let pool):
            return "cannot spawn on \(pool): the pool has shut down (spawn before shutdown(), or use the default pool)"
        case .threadStartFailed(let name, let errno):
            return "could not start pool thread \(name): pthread_create failed with \(errno)"
        case .invalidConfiguration(let what):
            return "invalid configuration: \(what)"
        case .reactorFailed(let error):
            return "could not create the pool's reactor: \(error)"
        case .globalExecutorInstallFailed(let reason):
            return "could not install a WorkStealingPool as Swift's global executor: \(reason)"
        }
    }
}
