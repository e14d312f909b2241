import Glibc
import Synchronization

// What a TCP connection and a Unix-domain stream share: reading, writing, half-close, closing and
// splitting, written once. `TCPStream` and `UnixStream` are final subclasses that add what differs
// (connecting, addresses, TCP's options); the class doc comments of those two describe the
// behaviour for users.
//
// Why a base class and not a protocol with default implementations: the default implementations
// would have to reach the socket core through a public requirement (SocketHandle is internal), and
// a call from another module to a protocol extension's method is a call to an unspecialized
// generic, with the core fetched through a witness table on every read and write. A method of a
// class extension is a direct call, as it was on each stream type: the echo path's instruction
// count is unchanged. Not open (no public init either): only this module subclasses it.
//
// `@unchecked Sendable`: a non-final class cannot be checked Sendable. Every stored property is a
// `let` of a Sendable type (the handle, an atomic), so this one and its subclasses (which add no
// stored properties) are Sendable in fact.

/// A connected stream socket: the reading, writing, shutdown and closing that ``TCPStream`` and
/// ``UnixStream`` share (see those types for the behaviour in full).
public class StreamSocket: AsyncByteReader, AsyncByteWriter, @unchecked Sendable {
    let handle: SocketHandle
    /// Set by the first `split()` (StreamHalves.swift), which must be the only one.
    let splitTaken = Atomic<Bool>(false)

    /// `required`: a listener makes its stream type from an accepted socket (`StreamListener`).
    required init(handle: SocketHandle) {
        self.handle = handle
    }

    deinit {
        handle.close()
    }

    /// Which side of the connection ``shutdown(_:)`` closes.
    public enum ShutdownDirection: Sendable {
        /// No more reads: reads return 0.
        case read
        /// Half-close: the peer reads end of stream; we can still read its data.
        case write
        /// Both.
        case both
    }
}

extension StreamSocket {
    // MARK: Reading

    /// Reads up to `buffer.count` bytes into `buffer`; returns 0 at end of stream.
    ///
    /// `buffer` must stay valid until the call returns. An empty `buffer` throws ``IOError`` with
    /// `EINVAL` (a read of 0 bytes would look like end of stream).
    nonisolated(nonsending)
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try await handle.readStream(into: buffer)
    }

    // MARK: Writing

    /// Writes every byte of `buffer`, suspending while the socket buffer is full (backpressure:
    /// nothing is buffered in user space). Concurrent writes queue, each written whole.
    nonisolated(nonsending)
    public func write(_ buffer: UnsafeRawBufferPointer) async throws {
        try await handle.writeStream(buffer)
    }

    /// Writes every byte of `bytes` (e.g. `[UInt8]`, `ArraySlice<UInt8>`, `"text".utf8`).
    nonisolated(nonsending)
    public func write<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes) async throws {
        try await handle.writeStream(bytes)
    }

    // MARK: Shutdown, close

    /// Shuts down one or both directions without closing the socket (`shutdown(2)`).
    public func shutdown(_ direction: ShutdownDirection) throws(IOError) {
        try handle.shutdownStream(direction)
    }

    /// Closes the connection. Pending and later operations fail with `EBADF`. Idempotent; never
    /// blocks. Dropping the last reference closes it too.
    public func close() {
        handle.close()
    }
}

extension StreamSocket: SocketByteStream {}
