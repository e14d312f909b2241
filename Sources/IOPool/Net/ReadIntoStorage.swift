// Reads into the caller's storage, without a scratch buffer: appended to an `inout [UInt8]`, or
// into the uninitialized tail of an `OutputRawSpan` / `OutputSpan<UInt8>`.
//
// `read(maxBytes:)` allocates a scratch buffer, reads into it, and copies it into a new array: two
// allocations and a copy per read. Here the kernel writes into the caller's memory directly. What
// makes that sound across an `await`: the socket core's `perform` suspends only between attempts,
// and every attempt is a synchronous closure, so each borrows the caller's storage anew (an array
// can grow, i.e. move, between attempts; a pointer never crosses a suspension). BENCHMARKS.md,
// "Issue 12: reads into the caller's storage", has the counts.
//
// Swift 6.3.1 compiles an async function taking `inout OutputRawSpan` across an `await` (and a
// non-escaping closure capturing it), so the span reads need no unsafe pointers in their API.

extension AsyncByteReader {
    /// The default of ``AsyncByteReader/read(appendingTo:maxBytes:)`` for readers that are not
    /// sockets: reads into a scratch buffer and appends it (one allocation, one copy).
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `maxBytes` is less than 1; the read's errors.
    nonisolated(nonsending)
    public func read(appendingTo bytes: inout [UInt8], maxBytes: Int) async throws -> Int {
        guard maxBytes > 0 else {
            throw IOError.invalidArgument("read(appendingTo:maxBytes: \(maxBytes))", "maxBytes must be at least 1 (0 means end of stream)")
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxBytes, alignment: 1)
        defer { buffer.deallocate() }
        let count = try await read(into: buffer)
        bytes += buffer[..<count]
        return count
    }
}

extension StreamSocket {
    /// Reads what is available, up to `maxBytes`, appending it to `bytes` with no scratch buffer and
    /// no copy (the kernel writes into the array's storage, grown as `append` grows it); returns the
    /// count appended, 0 at end of stream (`bytes` unchanged).
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `maxBytes` is less than 1; the read's errors
    ///   (`ECONNRESET`, `EBADF` once closed); `CancellationError`, with `bytes` unchanged.
    nonisolated(nonsending)
    public func read(appendingTo bytes: inout [UInt8], maxBytes: Int = 16384) async throws -> Int {
        try await handle.readStream(appendingTo: &bytes, maxBytes: maxBytes)
    }

    /// Reads what is available into the uninitialized tail of `span`, up to its free capacity, and
    /// marks it initialized; returns the count, 0 at end of stream.
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `span` has no free capacity; the read's errors;
    ///   `CancellationError`, with `span` unchanged.
    nonisolated(nonsending)
    public func read(into span: inout OutputRawSpan) async throws -> Int {
        try await handle.readStream(into: &span)
    }

    /// ``read(into:)-(OutputRawSpan)`` for a typed span of bytes.
    nonisolated(nonsending)
    public func read(into span: inout OutputSpan<UInt8>) async throws -> Int {
        try await handle.readStream(into: &span)
    }
}

extension StreamReadHalf {
    /// Reads up to `maxBytes`, appending to `bytes` without a copy: as
    /// ``StreamSocket/read(appendingTo:maxBytes:)``; `EBADF` once this half is closed.
    nonisolated(nonsending)
    public func read(appendingTo bytes: inout [UInt8], maxBytes: Int = 16384) async throws -> Int {
        try checkOpen()
        return try await handle.readStream(appendingTo: &bytes, maxBytes: maxBytes)
    }

    /// Reads into the free capacity of `span`: as ``StreamSocket/read(into:)-(OutputRawSpan)``;
    /// `EBADF` once this half is closed.
    nonisolated(nonsending)
    public func read(into span: inout OutputRawSpan) async throws -> Int {
        try checkOpen()
        return try await handle.readStream(into: &span)
    }

    /// Reads into the free capacity of `span`: as ``StreamSocket/read(into:)-(OutputRawSpan)``;
    /// `EBADF` once this half is closed.
    nonisolated(nonsending)
    public func read(into span: inout OutputSpan<UInt8>) async throws -> Int {
        try checkOpen()
        return try await handle.readStream(into: &span)
    }
}
