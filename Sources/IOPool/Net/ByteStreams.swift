/// A byte stream that can be read asynchronously: ``TCPStream``, ``UnixStream``, ``StreamReadHalf``;
/// ``BufferedReader`` reads lines, exact counts and records from any of them.
public protocol AsyncByteReader: Sendable {
    /// Reads up to `buffer.count` bytes into `buffer`; returns 0 at end of stream.
    nonisolated(nonsending) func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int

    /// Reads what is available, up to `maxBytes`, appending it to `bytes`; returns the count
    /// appended, 0 at end of stream (see ReadIntoStorage.swift). The socket streams read straight
    /// into the array's storage; the default reads through a scratch buffer.
    nonisolated(nonsending) func read(appendingTo bytes: inout [UInt8], maxBytes: Int) async throws -> Int
}

extension AsyncByteReader {
    /// Reads what is available, up to `maxBytes`; returns `[]` at end of stream.
    ///
    /// - Throws: ``IOError`` with `EINVAL` if `maxBytes` is less than 1; the read's errors.
    nonisolated(nonsending)
    public func read(maxBytes: Int = 16384) async throws -> [UInt8] {
        // 0 would read nothing and return [], which means end of stream: refused, not ambiguous.
        guard maxBytes > 0 else {
            throw IOError.invalidArgument("read(maxBytes: \(maxBytes))", "maxBytes must be at least 1 ([] means end of stream)")
        }
        // An Array's own buffer cannot be borrowed across a suspension: read into a scratch buffer.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxBytes, alignment: 1)
        defer { buffer.deallocate() }
        let count = try await read(into: buffer)
        return Array(buffer[..<count])
    }
}

/// A byte stream that can be written asynchronously.
public protocol AsyncByteWriter: Sendable {
    /// Writes every byte of `buffer`, suspending while the peer does not read.
    nonisolated(nonsending) func write(_ buffer: UnsafeRawBufferPointer) async throws
}

/// A stream type backed by a socket (``StreamSocket``, the halves of a split one): lets `copy`
/// reach the socket core and try a write synchronously before awaiting.
protocol SocketByteStream: AnyObject {
    var handle: SocketHandle { get }
}
