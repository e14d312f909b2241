import Glibc

// Buffered reading over any AsyncByteReader (a TCPStream, a UnixStream, a StreamReadHalf, a
// user's type): lines, exact counts, up to a delimiter, to the end, peeking, and the `lines` and
// `chunks` sequences — what a protocol parser reads with, so that it never hand-writes a loop that
// loses the bytes read past what it wanted.
//
// The buffer is one allocation that grows only when a request needs more than it holds (a line
// longer than it, up to the line's limit; an exact count), geometrically, and never beyond what the
// request's limit allows. Bytes are consumed only when a call returns them: a call that throws
// (a limit exceeded, end of stream too early, a reset, a cancellation) leaves every byte read so far
// buffered for the next call. That is what makes a cancelled `readLine` lose nothing: the base
// read either returns bytes (added to the buffer) or throws having taken none.
//
// A class, not a struct: `lines` and `chunks` iterate the reader itself, so that a parser can read
// a few lines, then an exact body, from the same buffer. Not Sendable: one task reads through it
// (every method is `nonisolated(nonsending)`, so it runs on the caller's executor, and the
// sequences' `next(isolation:)` on the iterating actor, without a hop).

/// Reads lines, exact byte counts, delimited records, or everything, from a byte stream, keeping
/// what it reads past them buffered for the next call.
///
/// ```swift
/// let reader = BufferedReader(stream)
/// while let line = try await reader.readLine(maxLength: 1024) {   // LF or CRLF
///     print(line)
/// }
///
/// let header = try await reader.readExactly(4)                     // a length prefix
/// let body = try await reader.readExactly(Int(header[0]))
///
/// for try await line in reader.lines { print(line) }
/// ```
///
/// Limits and errors (every error leaves the bytes read so far buffered, readable by the next call):
/// - ``readLine(maxLength:)``, ``read(until:maxLength:)``: a line or record longer than
///   `maxLength` throws ``IOError`` with `EMSGSIZE`, its detail naming the limit.
/// - ``readExactly(_:)``: end of stream before `count` bytes throws ``IOError`` with `ENODATA`, its
///   detail saying how many arrived.
/// - ``readToEnd(maxBytes:)``: more than `maxBytes` before end of stream throws `EMSGSIZE`.
/// - A negative limit or count throws `EINVAL`.
/// - The base reader's errors pass through (`ECONNRESET`, `EBADF` once closed); a cancelled call
///   throws `CancellationError` and loses no byte.
///
/// The buffer starts at `capacity` bytes and grows only for a line, record or count that does not
/// fit, never past its limit (plus 2 bytes for a CRLF).
///
/// Not `Sendable`: one task reads through a reader at a time (give the stream's read half to the
/// task, and make the reader there).
public final class BufferedReader<Base: AsyncByteReader> {
    /// The stream read from. Reading it directly skips the bytes buffered here.
    public let base: Base

    private var storage: UnsafeMutableRawBufferPointer
    /// The buffered bytes are `storage[start..<end]`.
    private var start = 0
    private var end = 0
    /// The base reported end of stream (sticky: it is not asked again).
    private var reachedEnd = false

    /// - Parameters:
    ///   - base: the stream to read from.
    ///   - capacity: the buffer's initial size, at least 1 (16 KiB by default, as
    ///     ``defaultCopyBufferSize``); each read from `base` asks for up to the room left in it.
    public init(_ base: Base, capacity: Int = defaultCopyBufferSize) {
        usagePrecondition(capacity >= 1, "BufferedReader capacity must be at least 1, not \(capacity)")
        self.base = base
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        storage.deallocate()
    }

    /// How many bytes are buffered: read from the base, not yet returned.
    public var bufferedByteCount: Int { end - start }

    /// Whether the base has reported end of stream (some bytes may still be buffered).
    public var hasReachedEnd: Bool { reachedEnd }

    // MARK: Lines and delimited records

    /// The default longest line: 64 KiB, as Go's `bufio.Scanner`.
    public static var defaultMaxLineLength: Int { 64 * 1024 }

    /// Reads the next line, ended by LF or CRLF (the terminator is not returned); `nil` at end of
    /// stream once every byte has been returned.
    ///
    /// End of stream after a partial line (bytes with no LF after them): that partial line is
    /// returned as the last line (as Swift's `readLine()` and Go's `bufio.Scanner` do), and the next
    /// call returns `nil`. A caller that must reject an unterminated last line can use
    /// ``read(until:maxLength:)`` and ``hasReachedEnd``.
    ///
    /// The bytes are decoded as UTF-8; invalid sequences become U+FFFD (use
    /// ``read(until:maxLength:)`` with `0x0A` for the raw bytes).
    ///
    /// - Parameter maxLength: the longest line accepted, in bytes, without its terminator.
    /// - Throws: ``IOError`` with `EMSGSIZE` (operation `"readLine(maxLength: N)"`) if no LF comes
    ///   within `maxLength` bytes (+ CR LF): the bytes stay buffered, so the caller can read them
    ///   otherwise or give up; `EINVAL` if `maxLength` is negative; the base's errors;
    ///   `CancellationError` (the partial line stays buffered for the next call).
    nonisolated(nonsending)
    public func readLine(maxLength: Int = BufferedReader.defaultMaxLineLength) async throws -> String? {
        guard let (content, consumed) = try await locate(
            0x0A, maxLength: maxLength, allowingCR: true, operation: "readLine(maxLength: \(maxLength))", what: "line feed")
        else { return nil }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: storage[start..<(start + content)]), as: UTF8.self)
        consume(consumed)
        return line
    }

    /// Reads the bytes up to the next `delimiter` (which is consumed, not returned); `nil` at end
    /// of stream once every byte has been returned. End of stream after bytes with no delimiter
    /// after them returns them as the last record (see ``hasReachedEnd``).
    ///
    /// - Parameters:
    ///   - delimiter: the byte that ends a record.
    ///   - maxLength: the longest record accepted, in bytes, without the delimiter.
    /// - Throws: ``IOError`` with `EMSGSIZE` (operation `"read(until: D, maxLength: N)"`) if the
    ///   delimiter does not come within `maxLength` bytes (the bytes stay buffered); `EINVAL` if
    ///   `maxLength` is negative; the base's errors; `CancellationError` (nothing is lost).
    nonisolated(nonsending)
    public func read(until delimiter: UInt8, maxLength: Int) async throws -> [UInt8]? {
        guard let (content, consumed) = try await locate(
            delimiter, maxLength: maxLength, allowingCR: false, operation: "read(until: \(delimiter), maxLength: \(maxLength))",
            what: "delimiter \(delimiter)")
        else { return nil }
        let record = Array(UnsafeRawBufferPointer(rebasing: storage[start..<(start + content)]))
        consume(consumed)
        return record
    }

    /// Finds the next `delimiter` within `maxLength` bytes (plus a CR before it, if `allowingCR`),
    /// reading as needed: the record's length and the bytes it consumes, from `start`; nil at end
    /// of stream with nothing buffered. Consumes nothing.
    nonisolated(nonsending)
    private func locate(
        _ delimiter: UInt8, maxLength: Int, allowingCR: Bool, operation: @autoclosure () -> String, what: @autoclosure () -> String
    ) async throws -> (content: Int, consumed: Int)? {
        guard maxLength >= 0 else { throw IOError.invalidArgument(operation(), "maxLength must not be negative") }
        let terminator = allowingCR ? 2 : 1
        // The most bytes that can hold an acceptable record and its terminator.
        let window = maxLength > Int.max - terminator ? Int.max : maxLength + terminator
        var searched = 0  // bytes from `start` known to hold no delimiter
        while true {
            let buffered = end - start
            let limit = min(buffered, window)
            if searched < limit, let found = memchr(storage.baseAddress! + start + searched, CInt(delimiter), limit - searched) {
                let index = found - (storage.baseAddress! + start)
                var content = index
                if allowingCR && index > 0 && storage[start + index - 1] == 0x0D { content -= 1 }
                if content > maxLength { throw tooLong(operation(), what(), maxLength) }
                return (content, index + 1)
            }
            searched = limit
            if buffered >= window { throw tooLong(operation(), what(), maxLength) }
            if reachedEnd {
                if buffered == 0 { return nil }
                if buffered > maxLength { throw tooLong(operation(), what(), maxLength) }
                return (buffered, buffered)
            }
            try await fill(toHold: window)
        }
    }

    private func tooLong(_ operation: String, _ what: String, _ maxLength: Int) -> IOError {
        IOError(
            errno: .messageTooLong, operation: operation,
            detail: "no \(what) within the limit of \(maxLength) bytes; the \(bufferedByteCount) bytes read stay buffered")
    }

    // MARK: Counts

    /// Reads exactly `count` bytes.
    ///
    /// A count up to the buffer's size is gathered in the buffer (reading ahead: what arrives past
    /// it stays buffered); a larger one is read straight into the returned array (no scratch copy
    /// for socket streams, see ``AsyncByteReader/read(appendingTo:maxBytes:)``).
    ///
    /// - Throws: ``IOError`` with `ENODATA` (operation `"readExactly(N)"`, detail "end of stream after
    ///   M of N bytes") if the stream ends first: the M bytes stay buffered; `EINVAL` if `count` is
    ///   negative; the base's errors; `CancellationError` (the bytes that arrived stay buffered).
    nonisolated(nonsending)
    public func readExactly(_ count: Int) async throws -> [UInt8] {
        guard count >= 0 else { throw IOError.invalidArgument("readExactly(\(count))", "count must not be negative") }
        if count <= storage.count {
            while end - start < count {
                if reachedEnd { throw endedEarly(count) }
                try await fill(toHold: count)
            }
            let bytes = Array(UnsafeRawBufferPointer(rebasing: storage[start..<(start + count)]))
            consume(count)
            return bytes
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        bytes += storage[start..<end]
        consume(end - start)
        do {
            while bytes.count < count {
                if reachedEnd { throw endedEarly(count, received: bytes.count) }
                if try await base.read(appendingTo: &bytes, maxBytes: count - bytes.count) == 0 { reachedEnd = true }
            }
        } catch {
            unread(bytes)  // nothing is lost: the next call sees them again
            throw error
        }
        return bytes
    }

    private func endedEarly(_ count: Int, received: Int? = nil) -> IOError {
        IOError(
            errno: .noData, operation: "readExactly(\(count))",
            detail: "end of stream after \(received ?? bufferedByteCount) of \(count) bytes; they stay buffered")
    }

    /// Reads everything up to end of stream.
    ///
    /// - Throws: ``IOError`` with `EMSGSIZE` (operation `"readToEnd(maxBytes: N)"`) if more than
    ///   `maxBytes` bytes come before end of stream: they stay buffered (the buffer grows to at most
    ///   `maxBytes` + 1 bytes); `EINVAL` if `maxBytes` is negative; the base's errors;
    ///   `CancellationError` (nothing is lost).
    nonisolated(nonsending)
    public func readToEnd(maxBytes: Int) async throws -> [UInt8] {
        guard maxBytes >= 0 else { throw IOError.invalidArgument("readToEnd(maxBytes: \(maxBytes))", "maxBytes must not be negative") }
        let window = maxBytes == Int.max ? Int.max : maxBytes + 1
        while !reachedEnd && end - start < window {
            try await fill(toHold: window)
        }
        guard end - start <= maxBytes else {
            throw IOError(
                errno: .messageTooLong, operation: "readToEnd(maxBytes: \(maxBytes))",
                detail: "more than \(maxBytes) bytes before end of stream; the \(bufferedByteCount) bytes read stay buffered")
        }
        let bytes = Array(UnsafeRawBufferPointer(rebasing: storage[start..<end]))
        consume(end - start)
        return bytes
    }

    /// The next `count` bytes, without consuming them (the next read returns them again); fewer
    /// only at end of stream (`[]` there).
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `count` is negative; the base's errors;
    ///   `CancellationError` (nothing is lost).
    nonisolated(nonsending)
    public func peek(_ count: Int = 1) async throws -> [UInt8] {
        guard count >= 0 else { throw IOError.invalidArgument("peek(\(count))", "count must not be negative") }
        while end - start < count && !reachedEnd {
            try await fill(toHold: count)
        }
        return Array(UnsafeRawBufferPointer(rebasing: storage[start..<(start + min(count, end - start))]))
    }

    // MARK: Plain reads

    /// Reads what is available, up to `maxBytes`: buffered bytes first, else one read of the base;
    /// `[]` at end of stream.
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `maxBytes` is less than 1; the base's errors;
    ///   `CancellationError`.
    nonisolated(nonsending)
    public func read(maxBytes: Int = defaultCopyBufferSize) async throws -> [UInt8] {
        guard maxBytes > 0 else {
            throw IOError.invalidArgument("read(maxBytes: \(maxBytes))", "maxBytes must be at least 1 ([] means end of stream)")
        }
        var bytes: [UInt8] = []
        _ = try await read(appendingTo: &bytes, maxBytes: maxBytes)
        return bytes
    }

    /// Appends what is available, up to `maxBytes`, to `bytes`: buffered bytes first, else one read
    /// of the base (straight into `bytes` for socket streams); returns the count, 0 at end of stream.
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `maxBytes` is less than 1; the base's errors;
    ///   `CancellationError` (`bytes` unchanged).
    nonisolated(nonsending)
    public func read(appendingTo bytes: inout [UInt8], maxBytes: Int) async throws -> Int {
        guard maxBytes > 0 else {
            throw IOError.invalidArgument("read(appendingTo:maxBytes: \(maxBytes))", "maxBytes must be at least 1 (0 means end of stream)")
        }
        if end > start {
            let count = min(maxBytes, end - start)
            bytes += storage[start..<(start + count)]
            consume(count)
            return count
        }
        if reachedEnd { return 0 }
        let count = try await base.read(appendingTo: &bytes, maxBytes: maxBytes)
        if count == 0 { reachedEnd = true }
        return count
    }

    /// Reads up to `buffer.count` bytes into `buffer`: buffered bytes first, else one read of the
    /// base; 0 at end of stream. `EINVAL` for an empty `buffer`.
    nonisolated(nonsending)
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        guard buffer.count > 0 else {
            throw IOError.invalidArgument("read(into:)", "the buffer is empty; a read needs room for at least one byte (0 means end of stream)")
        }
        if end > start {
            let count = min(buffer.count, end - start)
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[start..<(start + count)]))
            consume(count)
            return count
        }
        if reachedEnd { return 0 }
        let count = try await base.read(into: buffer)
        if count == 0 { reachedEnd = true }
        return count
    }

    // MARK: The buffer

    /// Reads once from the base into the buffer, first making room (more than `bufferedByteCount`,
    /// which is less than `total`): compacting, and, if the buffer is full, growing it
    /// geometrically, never past `total`. Sets `reachedEnd` at end of stream. Bytes move only before the read, so a
    /// read that throws leaves them as they were.
    nonisolated(nonsending)
    private func fill(toHold total: Int) async throws {
        let buffered = end - start
        // Grow only when compacting cannot make room: a huge limit must not grow an idle buffer.
        if buffered == storage.count && storage.count < total {
            let grown = storage.count > Int.max / 2 ? Int.max : storage.count * 2
            let capacity = max(buffered + 1, min(total, grown))
            if capacity > storage.count { resize(to: capacity) }
        }
        if end == storage.count || storage.count - start < min(total, storage.count) {
            compact()
        }
        let room = UnsafeMutableRawBufferPointer(rebasing: storage[end...])
        let count = try await base.read(into: room)
        if count == 0 { reachedEnd = true }
        end += count
    }

    private func resize(to capacity: Int) {
        let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[start..<end]))
        storage.deallocate()
        storage = grown
        end -= start
        start = 0
    }

    private func compact() {
        guard start > 0 else { return }
        let count = end - start
        if count > 0 { storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: count) }
        start = 0
        end = count
    }

    private func consume(_ count: Int) {
        start += count
        if start == end {
            start = 0
            end = 0
        }
    }

    /// Puts `bytes` back in front of the buffered bytes (after a failed `readExactly`).
    private func unread(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let buffered = end - start
        if storage.count < bytes.count + buffered { resize(to: bytes.count + buffered) }
        // Move the buffered bytes to make room in front, then copy `bytes` there.
        let base = storage.baseAddress!
        if buffered > 0 { (base + bytes.count).copyMemory(from: base + start, byteCount: buffered) }
        bytes.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        start = 0
        end = bytes.count + buffered
    }

    // MARK: Sequences

    /// The lines of the stream, as ``readLine(maxLength:)`` reads them with the default limit; the
    /// sequence ends at end of stream. Iterates this reader: bytes it has not returned stay here.
    public var lines: Lines { Lines(reader: self, maxLength: Self.defaultMaxLineLength) }

    /// The lines of the stream, each at most `maxLength` bytes (longer: `EMSGSIZE`, as
    /// ``readLine(maxLength:)``).
    public func lines(maxLength: Int) -> Lines { Lines(reader: self, maxLength: maxLength) }

    /// The stream's bytes as they arrive, in chunks of at most `maxBytes` (buffered bytes first);
    /// the sequence ends at end of stream. `maxBytes` below 1 throws `EINVAL` from the first
    /// `next()`.
    public func chunks(maxBytes: Int = defaultCopyBufferSize) -> Chunks { Chunks(reader: self, maxBytes: maxBytes) }

    /// The lines of a ``BufferedReader``; its `next(isolation:)` runs on the iterating actor, no hop.
    public struct Lines: AsyncSequence {
        public typealias Element = String
        public typealias Failure = any Error
        let reader: BufferedReader
        let maxLength: Int

        public func makeAsyncIterator() -> Iterator { Iterator(reader: reader, maxLength: maxLength) }

        public struct Iterator: AsyncIteratorProtocol {
            let reader: BufferedReader
            let maxLength: Int

            public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws -> String? {
                try await reader.readLine(maxLength: maxLength)
            }

            nonisolated(nonsending)
            public mutating func next() async throws -> String? {
                try await reader.readLine(maxLength: maxLength)
            }
        }
    }

    /// The chunks of a ``BufferedReader``; its `next(isolation:)` runs on the iterating actor, no hop.
    public struct Chunks: AsyncSequence {
        public typealias Element = [UInt8]
        public typealias Failure = any Error
        let reader: BufferedReader
        let maxBytes: Int

        public func makeAsyncIterator() -> Iterator { Iterator(reader: reader, maxBytes: maxBytes) }

        public struct Iterator: AsyncIteratorProtocol {
            let reader: BufferedReader
            let maxBytes: Int

            public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws -> [UInt8]? {
                try await nextChunk()
            }

            nonisolated(nonsending)
            public mutating func next() async throws -> [UInt8]? {
                try await nextChunk()
            }

            nonisolated(nonsending)
            private func nextChunk() async throws -> [UInt8]? {
                let chunk = try await reader.read(maxBytes: maxBytes)
                return chunk.isEmpty ? nil : chunk
            }
        }
    }
}
