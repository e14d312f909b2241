// Gathered writes: several buffers (a header and a body, a frame's length and payload) written as
// one, with `sendmsg(2)`'s scatter/gather list instead of a copy into one buffer or one `send` per
// buffer (each `send` of a small header can be a segment of its own with TCP_NODELAY). The
// socket core's `writeStream(gathering:)` holds the write turn for the whole call, so a gathered
// write is one whole write, as `write(_:)` is.

extension StreamSocket {
    /// Writes every byte of every chunk, in order, as one whole write (other tasks' writes come
    /// before or after all of it), with as few `sendmsg(2)` calls as the socket allows: one, when
    /// the socket buffer has room. At most 1,024 chunks (`IOV_MAX`) go in one call; more take more.
    ///
    /// ```swift
    /// try await stream.write(gathering: [header, payload])
    /// ```
    ///
    /// - Throws: ``IOError`` (operation `"write (sendmsg)"`): `EPIPE` or `ECONNRESET` from a peer
    ///   that reset, `EBADF` once closed; `CancellationError` (a prefix may have been written).
    nonisolated(nonsending)
    public func write<Chunk: Collection<UInt8> & Sendable>(gathering chunks: [Chunk]) async throws {
        try await handle.writeStream(gathering: chunks)
    }
}

extension StreamWriteHalf {
    /// Writes every chunk as one whole, gathered write: as ``StreamSocket/write(gathering:)``;
    /// `EBADF` once this half is closed.
    nonisolated(nonsending)
    public func write<Chunk: Collection<UInt8> & Sendable>(gathering chunks: [Chunk]) async throws {
        try checkOpen()
        try await handle.writeStream(gathering: chunks)
    }
}
