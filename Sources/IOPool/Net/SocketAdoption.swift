import Glibc
import SystemPackage

// Adopting descriptors made elsewhere: by systemd's socket activation, a parent process, a C
// library. The socket is checked to be what the adopting type models (a socket, of the right type
// and family, listening or not), then made non-blocking and close-on-exec, and from then on it is
// the type's own: closed by `close()` or the last reference. A check that fails throws and leaves
// the descriptor open and untouched: it still belongs to the caller.

extension SocketHandle {
    /// The checks and preparation of an adopted descriptor (see the file's notes).
    static func adopting(
        _ fd: CInt, type: CInt, families: [CInt], listening: Bool, what: String
    ) throws(IOError) -> SocketHandle {
        let operation = "adopt descriptor \(fd) as \(what)"
        // Checked without rawSyscall, which traps on EBADF (a library bug there, a caller's error here).
        guard fd >= 0, fcntl(fd, F_GETFD) != -1 else {
            throw IOError(errno: .badFileDescriptor, operation: operation, detail: "the descriptor is not open")
        }
        var info = stat()
        _ = try syscall("fstat", describedAs: operation) { fstat(fd, &info) }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw IOError(errno: .notSocket, operation: operation, detail: "the descriptor is not a socket")
        }
        func intOption(_ name: CInt) throws(IOError) -> CInt {
            var value: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            _ = try syscall("getsockopt", describedAs: operation) { getsockopt(fd, SOL_SOCKET, name, &value, &length) }
            return value
        }
        let actualType = try intOption(SO_TYPE)
        guard actualType == type else {
            let name = actualType == CInt(SOCK_STREAM.rawValue) ? "a stream socket" : actualType == CInt(SOCK_DGRAM.rawValue) ? "a datagram socket" : "a socket of type \(actualType)"
            throw IOError(errno: .protocolWrongTypeForSocket, operation: operation, detail: "it is \(name)")
        }
        let family = try intOption(SO_DOMAIN)
        guard families.contains(family) else {
            throw IOError(errno: .addressFamilyNotSupported, operation: operation, detail: "its address family is \(family)")
        }
        if type == CInt(SOCK_STREAM.rawValue) {
            let isListening = try intOption(SO_ACCEPTCONN) != 0
            guard isListening == listening else {
                throw IOError(
                    errno: .invalidArgument, operation: operation,
                    detail: isListening ? "it is a listening socket" : "it is not listening (listen(2) was not called)")
            }
        }
        let flags = try syscall("fcntl(F_GETFL)", describedAs: operation) { fcntl(fd, F_GETFL) }
        if flags & O_NONBLOCK == 0 {
            _ = try syscall("fcntl(F_SETFL)", describedAs: operation) { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        }
        let descriptorFlags = try syscall("fcntl(F_GETFD)", describedAs: operation) { fcntl(fd, F_GETFD) }
        _ = try syscall("fcntl(F_SETFD)", describedAs: operation) { fcntl(fd, F_SETFD, descriptorFlags | FD_CLOEXEC) }
        return SocketHandle(fd: fd, isStream: type == CInt(SOCK_STREAM.rawValue))
    }
}

extension TCPStream {
    /// Takes ownership of a connected TCP socket made elsewhere (inherited, or from a C library):
    /// it is made non-blocking and close-on-exec, and closed by ``StreamSocket/close()`` or the last reference.
    ///
    /// - Throws: ``IOError`` naming the descriptor, and leaving it open and untouched: `EBADF` if
    ///   it is not open, `ENOTSOCK` if it is not a socket, `EPROTOTYPE` if it is not a stream
    ///   socket, `EAFNOSUPPORT` if it is not IPv4 or IPv6, `EINVAL` if it is a listening socket.
    public convenience init(adopting fd: CInt) throws(IOError) {
        self.init(handle: try SocketHandle.adopting(fd, type: CInt(SOCK_STREAM.rawValue), families: [AF_INET, AF_INET6], listening: false, what: "a TCP stream"))
    }
}

extension TCPListener {
    /// Takes ownership of a listening TCP socket made elsewhere, e.g. one of
    /// ``SocketActivation/listenDescriptors(unsettingEnvironment:)``: it is made non-blocking and
    /// close-on-exec, and closed by ``StreamListener/close()`` or the last reference.
    ///
    /// - Throws: ``IOError`` naming the descriptor, and leaving it open and untouched: `EBADF`,
    ///   `ENOTSOCK`, `EPROTOTYPE`, `EAFNOSUPPORT` as ``TCPStream/init(adopting:)``; `EINVAL` if it
    ///   is not listening.
    public convenience init(adopting fd: CInt) throws(IOError) {
        self.init(handle: try SocketHandle.adopting(fd, type: CInt(SOCK_STREAM.rawValue), families: [AF_INET, AF_INET6], listening: true, what: "a TCP listener"))
    }
}

extension UnixStream {
    /// Takes ownership of a connected Unix-domain stream socket made elsewhere (one end of a
    /// `socketpair` given by a parent, say). Throws as ``TCPStream/init(adopting:)``, with
    /// `EAFNOSUPPORT` if it is not `AF_UNIX`.
    public convenience init(adopting fd: CInt) throws(IOError) {
        self.init(handle: try SocketHandle.adopting(fd, type: CInt(SOCK_STREAM.rawValue), families: [AF_UNIX], listening: false, what: "a Unix stream"))
    }
}

extension UnixListener {
    /// Takes ownership of a listening Unix-domain socket made elsewhere (systemd's
    /// `ListenStream=/run/app.sock`). Throws as ``TCPListener/init(adopting:)``, with
    /// `EAFNOSUPPORT` if it is not `AF_UNIX`.
    public convenience init(adopting fd: CInt) throws(IOError) {
        self.init(handle: try SocketHandle.adopting(fd, type: CInt(SOCK_STREAM.rawValue), families: [AF_UNIX], listening: true, what: "a Unix listener"))
    }
}

extension UDPSocket {
    /// Takes ownership of a UDP socket made elsewhere (systemd's `ListenDatagram=`). Throws as
    /// ``TCPStream/init(adopting:)``, with `EPROTOTYPE` if it is not a datagram socket.
    public convenience init(adopting fd: CInt) throws(IOError) {
        self.init(handle: try SocketHandle.adopting(fd, type: CInt(SOCK_DGRAM.rawValue), families: [AF_INET, AF_INET6], listening: false, what: "a UDP socket"))
    }
}

/// systemd socket activation (`sd_listen_fds(3)`): the sockets the service manager opened for
/// this process, starting at descriptor 3.
///
/// ```swift
/// for socket in try SocketActivation.listenDescriptors() {
///     let listener = try TCPListener(adopting: socket.fd)   // ListenStream=8080
///     print("serving \(try listener.localAddress) from systemd (\(socket.name ?? "unnamed"))")
/// }
/// ```
public enum SocketActivation {
    /// The first passed descriptor (`SD_LISTEN_FDS_START`).
    public static let firstDescriptor: CInt = 3

    /// One passed socket: its descriptor and its name (`FileDescriptorName=`, or the socket
    /// unit's name), when `LISTEN_FDNAMES` gives one.
    public struct Descriptor: Sendable, Hashable {
        public var fd: CInt
        public var name: String?
    }

    /// The descriptors passed by socket activation, in order, each set close-on-exec; empty when
    /// the process was not socket-activated (`LISTEN_PID` unset, or another process's: the
    /// variables were inherited from a parent).
    ///
    /// Adopt each with the type it is (``TCPListener/init(adopting:)``,
    /// ``UnixListener/init(adopting:)``, ``UDPSocket/init(adopting:)``); the adopting type checks it.
    ///
    /// - Parameter unsettingEnvironment: removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`
    ///   from the environment (as `sd_listen_fds(1)`), so that child processes do not take the
    ///   sockets for theirs. `setenv`/`unsetenv` are not thread-safe: call this early, before
    ///   other threads read the environment.
    /// - Throws: ``IOError`` with `EINVAL` if `LISTEN_PID` or `LISTEN_FDS` is not a number, or
    ///   `EBADF` if a descriptor it announces is not open.
    public static func listenDescriptors(unsettingEnvironment: Bool = true) throws(IOError) -> [Descriptor] {
        defer {
            if unsettingEnvironment {
                unsetenv("LISTEN_PID")
                unsetenv("LISTEN_FDS")
                unsetenv("LISTEN_FDNAMES")
            }
        }
        return try listenDescriptors(environment: { getenv($0).map { String(cString: $0) } }, pid: getpid(), first: firstDescriptor)
    }

    /// The parsing, with the environment, process id and first descriptor given (tests).
    static func listenDescriptors(
        environment: (String) -> String?, pid: pid_t, first: CInt
    ) throws(IOError) -> [Descriptor] {
        let operation = "socket activation"
        guard let pidText = environment("LISTEN_PID") else { return [] }
        guard let listenPID = pid_t(pidText) else {
            throw IOError(errno: .invalidArgument, operation: operation, detail: "LISTEN_PID is not a process id: \(String(reflecting: pidText))")
        }
        guard listenPID == pid else { return [] }
        let countText = environment("LISTEN_FDS") ?? "0"
        guard let count = CInt(countText), count >= 0, count <= CInt.max - first else {
            throw IOError(errno: .invalidArgument, operation: operation, detail: "LISTEN_FDS is not a descriptor count: \(String(reflecting: countText))")
        }
        let names = environment("LISTEN_FDNAMES").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
        var descriptors: [Descriptor] = []
        for index in 0..<count {
            let fd = first + index
            let flags = fcntl(fd, F_GETFD)
            guard flags != -1 else {
                throw IOError(errno: .badFileDescriptor, operation: operation, detail: "LISTEN_FDS announces descriptor \(fd), which is not open")
            }
            _ = try syscall("fcntl(F_SETFD)", describedAs: operation) { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
            let name = names.flatMap { Int(index) < $0.count ? $0[Int(index)] : nil }
            descriptors.append(Descriptor(fd: fd, name: name))
        }
        return descriptors
    }
}
