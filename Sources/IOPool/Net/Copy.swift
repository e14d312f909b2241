/// The buffer ``copy(from:to:bufferSize:)`` uses by default: 16 KiB, the largest TLS record, and
/// small enough that thousands of copying connections stay cheap (tokio's `copy` uses 8 KiB).
public let defaultCopyBufferSize = 16 * 1024

/// Copies bytes from `source` to `destination` until `source` reaches end of stream; returns the
/// number of bytes copied.
///
/// Memory stays constant: one buffer of `bufferSize` bytes, and each chunk is written completely
/// (waiting while `destination` does not drain) before the next read. It does not shut down or
/// close either stream. A `bufferSize` below 1 throws ``IOError`` with `EINVAL`.
///
/// Each chunk goes to a socket `destination` as one whole write: writes of other tasks to the
/// same stream come before or after it, never inside it.
nonisolated(nonsending)
public func copy(
    from source: some AsyncByteReader, to destination: some AsyncByteWriter, bufferSize: Int = defaultCopyBufferSize
) async throws -> Int {
    guard bufferSize > 0 else {
        throw IOError.invalidArgument("copy(bufferSize: \(bufferSize))", "bufferSize must be at least 1")
    }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    // Writing to a socket stream is tried synchronously first: an `await` that does not suspend
    // still costs a runtime executor check, and a small echo is almost always written at once.
    // Reading from one calls the socket core directly, one async frame (one such check) fewer.
    let socketDestination = (destination as? any SocketByteStream)?.handle
    let socketSource = (source as? any SocketByteStream)?.handle
    var total = 0
    while true {
        let count: Int
        if let socketSource {
            count = try await socketSource.readStream(into: buffer)
        } else {
            count = try await source.read(into: buffer)
        }
        if count == 0 { return total }
        let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
        if let socketDestination, let written = try socketDestination.startWriteWithoutWaiting(chunk) {
            // This call holds the write turn until the chunk is written whole.
            if written < count {
                try await socketDestination.finishWrite(UnsafeRawBufferPointer(rebasing: chunk[written...]))
            }
        } else {
            try await destination.write(chunk)
        }
        total += count
    }
}
