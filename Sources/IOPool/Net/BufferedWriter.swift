// Buffered writing over any AsyncByteWriter: many small writes (a protocol's fields, lines) become
// one write of the buffer, a syscall and usually one TCP segment, instead of one each. The buffer
// is allocated once; a write that does not fit flushes first, and one larger than the whole buffer
// goes straight to the base (after a flush, so the order is kept). Nothing is written until the
// buffer fills or `flush()` is called: the caller decides where a message ends.

/// Collects small writes and writes them to the base stream together, on ``flush()`` or when the
/// buffer fills.
///
/// ```swift
/// let writer = BufferedWriter(stream)
/// try await writer.write("HTTP/1.1 200 OK\r\n".utf8)
/// try await writer.write("content-length: 2\r\n\r\nok".utf8)
/// try await writer.flush()                       // one write(2)
/// ```
///
/// Not `Sendable`: one task writes through it. Deinitializing it does not flush (a flush is
/// `async`): bytes not flushed are dropped.
///
/// Errors: the base's (`EPIPE`, `ECONNRESET`, `EBADF`, `CancellationError`). A write to the base
/// that throws may have written part of the buffer, so the buffer is emptied either way: retrying
/// would send some bytes twice.
public final class BufferedWriter<Base: AsyncByteWriter> {
    /// The stream written to. Writing it directly bypasses (and overtakes) the buffered bytes.
    public let base: Base

    private let storage: UnsafeMutableRawBufferPointer
    private var count = 0

    /// - Parameters:
    ///   - base: the stream to write to.
    ///   - capacity: the buffer's size, at least 1 (16 KiB by default).
    public init(_ base: Base, capacity: Int = defaultCopyBufferSize) {
        usagePrecondition(capacity >= 1, "BufferedWriter capacity must be at least 1, not \(capacity)")
        self.base = base
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        storage.deallocate()
    }

    /// How many bytes wait for the next flush.
    public var bufferedByteCount: Int { count }

    /// The buffer's size.
    public var capacity: Int { storage.count }

    /// Buffers `buffer`'s bytes, flushing first if they do not fit; bytes at least as many as the
    /// capacity are written to the base directly after the flush. `buffer` need only stay valid
    /// until the call returns.
    nonisolated(nonsending)
    public func write(_ buffer: UnsafeRawBufferPointer) async throws {
        if buffer.count > storage.count - count { try await flush() }
        if buffer.count >= storage.count {
            try await base.write(buffer)
            return
        }
        UnsafeMutableRawBufferPointer(rebasing: storage[count...]).copyMemory(from: buffer)
        count += buffer.count
    }

    /// Buffers `bytes` (e.g. `[UInt8]`, `"text".utf8`), flushing first if they do not fit; bytes
    /// more than the capacity go through the buffer, a flush each time it fills (a collection's
    /// storage cannot be borrowed across the base's `await`).
    nonisolated(nonsending)
    public func write(_ bytes: some Collection<UInt8>) async throws {
        if bytes.count > storage.count - count { try await flush() }
        var rest = bytes[...]
        while !rest.isEmpty {
            if count == storage.count { try await flush() }
            let taken = min(rest.count, storage.count - count)
            let end = rest.index(rest.startIndex, offsetBy: taken)
            _ = UnsafeMutableRawBufferPointer(rebasing: storage[count..<(count + taken)]).initializeMemory(
                as: UInt8.self, from: rest[..<end])
            count += taken
            rest = rest[end...]
        }
    }

    /// Writes the buffered bytes to the base (waiting while it does not drain) and empties the
    /// buffer. Nothing to do when it is empty.
    ///
    /// - Throws: the base's errors; the buffer is emptied even then (part of it may have been
    ///   written).
    nonisolated(nonsending)
    public func flush() async throws {
        guard count > 0 else { return }
        defer { count = 0 }
        try await base.write(UnsafeRawBufferPointer(rebasing: storage[..<count]))
    }
}
