import Glibc

// The public bridge between `SocketAddress` and C's `sockaddr`, for code that gets addresses from
// C APIs (getaddrinfo, getifaddrs, a C library's callback) or hands them to one. Everything goes
// through the internal `init?(storage:length:)` and `withSockAddr`, the one place that knows the
// layouts.

extension SocketAddress {
    /// Makes an address from a C `sockaddr` of `length` bytes: a `sockaddr_in` (`AF_INET`) or a
    /// `sockaddr_in6` (`AF_INET6`), as `getaddrinfo`, `getifaddrs`, `accept` or `recvfrom` give.
    ///
    /// The bytes are copied; `address` need only be valid during the call. The IPv6 flow label is
    /// dropped (see ``SocketAddress``).
    ///
    /// - Throws: ``SocketAddressError`` if the family is neither `AF_INET` nor `AF_INET6` (e.g.
    ///   `AF_UNIX`: use ``UnixSocketAddress``), or if `length` is shorter than that family's
    ///   `sockaddr` (16 bytes for IPv4, 28 for IPv6) or longer than `sockaddr_storage` (128).
    public init(_ address: UnsafePointer<sockaddr>, length: socklen_t) throws(SocketAddressError) {
        let input = "sockaddr of family \(address.pointee.sa_family), length \(length)"
        guard Int(length) <= MemoryLayout<sockaddr_storage>.size else {
            throw SocketAddressError(input: input, reason: "length exceeds sockaddr_storage (\(MemoryLayout<sockaddr_storage>.size) bytes)")
        }
        let family = CInt(address.pointee.sa_family)
        guard family == AF_INET || family == AF_INET6 else {
            throw SocketAddressError(input: input, reason: "family \(family) is neither AF_INET (\(AF_INET)) nor AF_INET6 (\(AF_INET6))")
        }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(address), count: Int(length)))
        }
        guard let made = SocketAddress(storage: storage, length: length) else {
            let needed = family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size
            throw SocketAddressError(input: input, reason: "length is shorter than the family's sockaddr (\(needed) bytes)")
        }
        self = made
    }

    /// Calls `body` with this address as a C `sockaddr` (a zero-filled `sockaddr_in` or
    /// `sockaddr_in6`) and its length, for a C API that takes one (`bind`, `connect`, `sendto` on
    /// a descriptor of your own).
    ///
    /// The pointer is valid only during `body`; do not store it.
    public func withUnsafeSockAddr<Result, Failure: Error>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try withSockAddr(body)
    }
}
