import CIOPoolShims
import Glibc
import SystemPackage

/// A listening Unix-domain stream socket: ``TCPListener`` for a ``UnixSocketAddress``.
///
/// ```swift
/// let address = try UnixSocketAddress(path: "/run/myapp.sock")
/// let listener = try UnixListener.bind(address, removingExistingFile: true)
/// for try await connection in listener.connections {
///     spawn {
///         _ = try? await copy(from: connection, to: connection)
///         connection.close()
///     }
/// }
/// ```
///
/// The socket file: `bind` creates it, and nothing here ever removes it behind the caller's back.
/// Binding a path where a file exists fails with `EADDRINUSE`, unless `removingExistingFile` is set
/// and that file is a socket (a stale one, left by a process that exited). ``StreamListener/close()`` leaves the
/// file in place: remove it yourself (`unlink`) when the server is done, or use an abstract address,
/// which has no file at all.
///
/// Accepting and closing are ``StreamListener``'s, shared with ``TCPListener``: running out of
/// descriptors or memory waits ``TCPListener/acceptBackoff`` and tries again (counted in
/// ``StreamListener/acceptBackoffCount``) instead of failing or spinning.
public final class UnixListener: StreamListener<UnixStream>, @unchecked Sendable {  // Sendable: see StreamListener.swift
    /// Binds a listening socket to `address`.
    ///
    /// If a file exists at a path `address`, the bind fails with `EADDRINUSE` and the file is left
    /// alone: removing a stale socket file is the caller's choice, never silent.
    ///
    /// - Parameters:
    ///   - address: a path (the socket file is created) or an abstract name.
    ///   - backlog: the accept queue length. When it is full, ``UnixStream/connect(to:)`` fails with
    ///     `EAGAIN` (Unix sockets do not queue connecting clients beyond it).
    ///   - removingExistingFile: if `true` and a **socket** file exists at the path, remove it
    ///     (`unlink`) before binding. Any other kind of file is never removed: the bind throws
    ///     `EADDRINUSE`. It does not check whether a process still listens on that socket (removing
    ///     its file takes the name from it), so use it only where one server owns the path. Ignored
    ///     for abstract addresses.
    /// - Throws: ``IOError``, with the operation naming the address, as `"bind to /run/myapp.sock"`.
    public static func bind(
        _ address: UnixSocketAddress, backlog: CInt = TCPListener.defaultBacklog, removingExistingFile: Bool = false
    ) throws(IOError) -> UnixListener {
        if removingExistingFile, let path = address.path {
            try removeSocketFile(at: path)
        }
        let handle = try SocketHandle(family: AF_UNIX, type: CInt(SOCK_STREAM.rawValue))
        let listener = UnixListener(handle: handle)
        _ = try handle.withFD("bind") { (fd) throws(IOError) in
            _ = try syscall("bind", describedAs: "bind to \(address)") { address.withSockAddr { Glibc.bind(fd, $0, $1) } }
            _ = try syscall("listen", describedAs: "listen on \(address)") { Glibc.listen(fd, backlog) }
        }
        return listener
    }

    /// Removes the file at `path` if it is a socket; throws `EADDRINUSE` if it is anything else.
    ///
    /// Between the `lstat` and the `unlink` another process could replace the file; the window is
    /// the caller's to close (one server per path), as with every "remove the stale socket" idiom.
    static func removeSocketFile(at path: String) throws(IOError) {
        var info = stat()
        switch rawSyscall("lstat", { lstat(path, &info) }) {
        case .done:
            break
        case .failed(let errno) where errno == .noSuchFileOrDirectory:
            return  // nothing to remove
        case .failed(let errno):
            throw IOError(errno: errno, operation: "bind to \(path)", detail: "lstat of the existing file failed")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw IOError(
                errno: .addressInUse, operation: "bind to \(path)",
                detail: "a file that is not a socket exists there; removingExistingFile removes only socket files")
        }
        switch rawSyscall("unlink", { unlink(path) }) {
        case .done:
            return
        case .failed(let errno) where errno == .noSuchFileOrDirectory:
            return  // someone else removed it meanwhile
        case .failed(let errno):
            throw IOError(errno: errno, operation: "bind to \(path)", detail: "could not remove the existing socket file")
        }
    }

    /// The bound address, as the kernel reports it (a relative path stays relative).
    public var localAddress: UnixSocketAddress {
        get throws(IOError) {
            guard let address = try handle.unixAddress("getsockname", { getsockname($0, $1, $2) }) else {
                throw IOError(errno: .invalidArgument, operation: "getsockname", detail: "the listening socket has no name")
            }
            return address
        }
    }
}
