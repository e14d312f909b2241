import Glibc
import Synchronization

// Owned halves of a stream socket: `split()` on a StreamSocket (TCPStream, UnixStream) gives a
// read half and a write half, so that "one task reads, another writes" is the obvious shape
// (tokio's `into_split`, Go's net.Conn used from two goroutines).
//
// Why classes with documented ownership, not `~Copyable` halves:
// - A half must move into the task that owns it, and the tasks are made by escaping closures
//   (`pool.spawn { }`, `Task { }`, `group.addTask { }`). Swift 6.3 refuses to consume a noncopyable
//   value captured by an escaping closure ("noncopyable 'half' cannot be consumed when captured by
//   an escaping closure"), so a `~Copyable` half could not reach its task without an Optional box,
//   which gives up the guarantee it was for.
// - The halves must be `AsyncByteReader` / `AsyncByteWriter`, so that `copy`, `BufferedReader` and
//   `BufferedWriter` take them. Those protocols (and AsyncSequence iterators, Array, Dictionary, an
//   actor's table of clients) need Copyable values.
// - Sharing a half is harmless anyway: the socket core already serves concurrent calls of one
//   direction in FIFO turns, each whole (see SocketHandle, "Concurrent use").
// So each half is a Sendable final class; "owned" is the documented contract (give each half to
// one task), and what must not be shared, the closing, is counted: each half ends once (its
// `close()` or its deinit, whichever comes first), and the second half to end closes the socket.
//
// The halves keep the stream object alive (its deinit closes the socket). Closing the stream
// itself after `split()` closes both halves at once, as closing any socket fails its pending
// operations.

/// The two halves' shared state: the socket, the stream that owns it, and how many halves are open.
final class SplitStream: Sendable {
    let handle: SocketHandle
    /// The stream split: held so that its deinit (which closes the socket) waits for the halves.
    private let stream: StreamSocket
    private let openHalves = Atomic<Int>(2)

    init(handle: SocketHandle, stream: StreamSocket) {
        self.handle = handle
        self.stream = stream
    }

    /// One half is done; the second one closes the socket.
    func halfEnded() {
        if openHalves.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { handle.close() }
    }
}

/// The read half of a ``TCPStream`` or ``UnixStream``, from `split()`: give it to the task that
/// reads.
///
/// Reads behave as on the stream (``read(into:)-(UnsafeMutableRawBufferPointer)`` returns 0 at end of stream; a cancelled read
/// throws `CancellationError` and loses no byte; concurrent reads take turns, each served whole).
///
/// Ending: ``close()`` shuts down the read direction (`shutdown(SHUT_RD)`: a read pending in another
/// task returns 0) and leaves the write half working; once both halves have ended (closed, or
/// deinitialized) the socket is closed. Dropping the last reference ends the half as `close()` does.
public final class StreamReadHalf: AsyncByteReader, Sendable {
    let split: SplitStream
    private let ended = Atomic<Bool>(false)

    init(_ split: SplitStream) {
        self.split = split
    }

    deinit {
        end(shuttingDown: false)
    }

    var handle: SocketHandle { split.handle }

    /// Reads up to `buffer.count` bytes into `buffer`; returns 0 at end of stream.
    ///
    /// - Throws: ``IOError`` with `EBADF` ("the read half is closed") after ``close()``, or if the
    ///   stream was closed; `EINVAL` for an empty `buffer`; the read's errors (`ECONNRESET`);
    ///   `CancellationError`.
    nonisolated(nonsending)
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try checkOpen()
        return try await split.handle.readStream(into: buffer)
    }

    /// Ends this half: shuts down the read direction (a pending read returns 0, later reads throw
    /// `EBADF`); closes the socket if the write half has ended too. Idempotent.
    public func close() {
        end(shuttingDown: true)
    }

    /// The local end's address, as ``TCPStream/localAddress`` (TCP only: a Unix stream's half
    /// throws `EAFNOSUPPORT`).
    public var localAddress: SocketAddress {
        get throws(IOError) { try split.handle.address("getsockname") { getsockname($0, $1, $2) } }
    }

    /// The peer's address, as ``TCPStream/remoteAddress`` (TCP only: a Unix stream's half throws
    /// `EAFNOSUPPORT`).
    public var remoteAddress: SocketAddress {
        get throws(IOError) { try split.handle.address("getpeername") { getpeername($0, $1, $2) } }
    }

    func checkOpen() throws(IOError) {
        if ended.load(ordering: .acquiring) {
            throw IOError(errno: .badFileDescriptor, operation: "read", detail: "the read half is closed")
        }
    }

    private func end(shuttingDown: Bool) {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // The socket may be closed already (the stream's close()): nothing left to shut down.
        if shuttingDown { try? split.handle.shutdownStream(.read) }
        split.halfEnded()
    }
}

/// The write half of a ``TCPStream`` or ``UnixStream``, from `split()`: give it to the task that
/// writes.
///
/// Writes behave as on the stream (each written whole, backpressure, `EPIPE` instead of `SIGPIPE`,
/// a cancelled write throws `CancellationError`).
///
/// Ending: ``close()`` half-closes the connection (`shutdown(SHUT_WR)`: the peer reads end of
/// stream) and leaves the read half working; once both halves have ended (closed, or
/// deinitialized) the socket is closed. Dropping the last reference ends the half as `close()`
/// does, including the half-close (as tokio's `OwnedWriteHalf`), so the peer never waits for
/// bytes from a writer that is gone.
public final class StreamWriteHalf: AsyncByteWriter, Sendable {
    let split: SplitStream
    private let ended = Atomic<Bool>(false)

    init(_ split: SplitStream) {
        self.split = split
    }

    deinit {
        close()
    }

    var handle: SocketHandle { split.handle }

    /// Writes every byte of `buffer`, suspending while the socket buffer is full.
    ///
    /// - Throws: ``IOError`` with `EBADF` ("the write half is closed") after ``close()``, or if the
    ///   stream was closed; the write's errors (`EPIPE`, `ECONNRESET`); `CancellationError` (part
    ///   of the bytes may have been written).
    nonisolated(nonsending)
    public func write(_ buffer: UnsafeRawBufferPointer) async throws {
        try checkOpen()
        try await split.handle.writeStream(buffer)
    }

    /// Writes every byte of `bytes` (e.g. `[UInt8]`, `ArraySlice<UInt8>`, `"text".utf8`); the
    /// errors of ``write(_:)-(UnsafeRawBufferPointer)``.
    nonisolated(nonsending)
    public func write<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes) async throws {
        try checkOpen()
        try await split.handle.writeStream(bytes)
    }

    /// Ends this half: half-closes the connection (the peer reads end of stream; later writes
    /// throw `EBADF`); closes the socket if the read half has ended too. Idempotent.
    public func close() {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? split.handle.shutdownStream(.write)  // the socket may be closed already
        split.halfEnded()
    }

    func checkOpen() throws(IOError) {
        if ended.load(ordering: .acquiring) {
            throw IOError(errno: .badFileDescriptor, operation: "write", detail: "the write half is closed")
        }
    }
}

extension StreamSocket {
    /// Splits the connection into a read half and a write half that two tasks can own: one reads
    /// while the other writes.
    ///
    /// ```swift
    /// let (reader, writer) = stream.split()
    /// try pool.spawn { _ = try await copy(from: reader, to: someSink) }
    /// try await writer.write(Array("hello\n".utf8))
    /// writer.close()                         // half-close; the reader goes on
    /// ```
    ///
    /// Use the halves, not the stream, from then on. Each half ends with its `close()` (which shuts
    /// down its direction) or its deinit; the socket closes when both have ended. The stream's own
    /// ``close()`` still closes everything at once.
    ///
    /// - Precondition: called once per stream (a second split would give a second pair that closes
    ///   the socket under the first); a second call traps.
    public func split() -> (reader: StreamReadHalf, writer: StreamWriteHalf) {
        usagePrecondition(!splitTaken.exchange(true, ordering: .relaxed), "split() called twice on one \(type(of: self))")
        let split = SplitStream(handle: handle, stream: self)
        return (StreamReadHalf(split), StreamWriteHalf(split))
    }
}

extension StreamReadHalf: SocketByteStream {}
extension StreamWriteHalf: SocketByteStream {}
