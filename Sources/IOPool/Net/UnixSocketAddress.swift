import Glibc

/// The address of a Unix-domain socket: a filesystem path, or a name in Linux's abstract namespace.
///
/// ```swift
/// let file = try UnixSocketAddress(path: "/run/myapp.sock")
/// let abstract = try UnixSocketAddress(abstract: "myapp")   // no file; gone with the last socket
/// print(abstract)                                           // "@myapp"
/// ```
///
/// A separate type from ``SocketAddress`` (IP only): a Unix address has no host and no port, and
/// keeping the two apart lets `TCPStream.connect(to:)` and ``UnixStream/connect(to:)`` say in their
/// types which kind of address they take.
///
/// `==` and `hash(into:)` compare the kind (path or abstract) and the name's bytes.
public struct UnixSocketAddress: Sendable, Hashable, CustomStringConvertible {
    enum Storage: Sendable, Hashable {
        /// A filesystem path: `sun_path` holds it NUL-terminated.
        case path(String)
        /// An abstract name: `sun_path` holds a NUL and then the name, and the address length (not a
        /// terminator) says where it ends.
        case abstract(String)
    }

    let storage: Storage

    init(_ storage: Storage) {
        self.storage = storage
    }

    /// The size of `sockaddr_un.sun_path` on Linux: 108 bytes.
    static let sunPathCapacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    /// The longest path, in UTF-8 bytes: 107, one byte of `sun_path` being the terminating NUL.
    /// (Linux also takes an unterminated 108-byte path, but `getsockname` and other systems do not
    /// round-trip it; like Go and Rust's std, we keep the terminator.)
    public static let maxPathLength = sunPathCapacity - 1

    /// The longest abstract name, in UTF-8 bytes: 107, one byte of `sun_path` being the leading NUL.
    public static let maxAbstractNameLength = sunPathCapacity - 1

    /// The offset of `sun_path` in `sockaddr_un` (after `sun_family`).
    private static let pathOffset = MemoryLayout<sa_family_t>.size

    /// A filesystem path, such as `"/run/myapp.sock"` or (relative to the working directory at the
    /// time of `bind` or `connect`) `"myapp.sock"`.
    ///
    /// - Throws: ``SocketAddressError`` if `path` is empty, contains a NUL byte, or is longer than
    ///   ``maxPathLength`` (107) bytes in UTF-8, which the kernel's `sockaddr_un` cannot hold.
    public init(path: String) throws(SocketAddressError) {
        try Self.validate(path, kind: "path", limit: Self.maxPathLength)
        self.init(.path(path))
    }

    /// A name in Linux's abstract socket namespace, such as `"myapp"` (shown as `"@myapp"`).
    ///
    /// An abstract socket has no file: nothing to remove after a crash, and the name is free again
    /// once the last socket bound to it is closed. Names are per network namespace, and any process
    /// in the namespace may connect (file permissions do not apply).
    ///
    /// - Parameter name: the name without the leading NUL the kernel uses to mark it.
    /// - Throws: ``SocketAddressError`` if `name` is empty, contains a NUL byte (this type models
    ///   names as text), or is longer than ``maxAbstractNameLength`` (107) bytes in UTF-8.
    public init(abstract name: String) throws(SocketAddressError) {
        try Self.validate(name, kind: "abstract name", limit: Self.maxAbstractNameLength)
        self.init(.abstract(name))
    }

    private static func validate(_ text: String, kind: String, limit: Int) throws(SocketAddressError) {
        let length = text.utf8.count
        if length == 0 {
            throw SocketAddressError(input: text, reason: "\(kind) is empty")
        }
        if let index = text.utf8.firstIndex(of: 0) {
            let offset = text.utf8.distance(from: text.utf8.startIndex, to: index)
            throw SocketAddressError(input: text, reason: "\(kind) contains a NUL byte at offset \(offset)")
        }
        if length > limit {
            throw SocketAddressError(
                input: text,
                reason: "\(kind) is \(length) bytes long; a Unix socket address holds at most \(limit) (sockaddr_un.sun_path)")
        }
    }

    /// The filesystem path, or `nil` for an abstract address.
    public var path: String? {
        if case .path(let path) = storage { return path }
        return nil
    }

    /// The abstract name (without the leading NUL), or `nil` for a path address.
    public var abstractName: String? {
        if case .abstract(let name) = storage { return name }
        return nil
    }

    /// The path as it is, or `"@"` followed by the abstract name (the notation of `ss` and `netstat`).
    public var description: String {
        switch storage {
        case .path(let path): return path
        case .abstract(let name): return "@\(name)"
        }
    }

    // MARK: Internal: the C view

    /// Calls `body` with this address as a `sockaddr_un` and its exact length, for `bind` and
    /// `connect`. The pointer is valid only during `body`.
    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let nameStart: Int
        let bytes: String.UTF8View
        switch storage {
        case .path(let path):
            (nameStart, bytes) = (0, path.utf8)
        case .abstract(let name):
            (nameStart, bytes) = (1, name.utf8)  // sun_path[0] stays NUL
        }
        // A path counts its terminating NUL (sockaddr_un() is zero-filled); an abstract name does not
        // end with one: every byte of the length belongs to the name.
        let used = nameStart + bytes.count + (nameStart == 0 ? 1 : 0)
        withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
            precondition(used <= sunPath.count, "a validated Unix socket address did not fit sun_path")
            UnsafeMutableRawBufferPointer(rebasing: sunPath[nameStart...]).copyBytes(from: bytes)
        }
        let length = Self.pathOffset + used
        return try withUnsafePointer(to: &address) { (pointer) throws(E) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (pointer) throws(E) -> R in
                try body(pointer, socklen_t(length))
            }
        }
    }

    /// Makes an address from what `getsockname` or `getpeername` filled in: `nil` for an unnamed
    /// socket (one end of a `socketpair`, or a client that did not bind).
    ///
    /// Names are decoded as UTF-8; bytes that are not valid UTF-8 become U+FFFD.
    init?(sockaddr address: sockaddr_un, length: socklen_t) {
        let nameLength = min(Int(length) - Self.pathOffset, Self.sunPathCapacity)
        guard nameLength > 0 else { return nil }
        let storage = withUnsafeBytes(of: address.sun_path) { sunPath -> Storage in
            let name = sunPath[..<nameLength]
            if name.first == 0 {
                return .abstract(String(decoding: name.dropFirst(), as: UTF8.self))
            }
            return .path(String(decoding: name.prefix { $0 != 0 }, as: UTF8.self))
        }
        self.init(storage)
    }
}

extension SocketHandle {
    /// `getsockname` / `getpeername` of a Unix-domain socket: `nil` if that end is unnamed.
    func unixAddress(
        _ operation: StaticString, _ call: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt
    ) throws(IOError) -> UnixSocketAddress? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        _ = try withFD(operation) { (fd) throws(IOError) in
            try syscall(operation) {
                withUnsafeMutablePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
                }
            }
        }
        guard CInt(address.sun_family) == AF_UNIX else {
            throw IOError(errno: .addressFamilyNotSupported, operation: "\(operation)", detail: "family \(address.sun_family), not AF_UNIX")
        }
        return UnixSocketAddress(sockaddr: address, length: length)
    }
}
