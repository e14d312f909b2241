/// A byte stream that can be read asynchronously (``TCPStream`` today; Unix streams later).
public protocol AsyncByteReader: Sendable {
    /// Reads up to `buffer.count` bytes into `buffer`; returns 0 at end of stream.
    nonisolated(nonsending) func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int
}

/// A byte stream that can be written asynchronously.
public protocol AsyncByteWriter: Sendable {
    /// Writes every byte of `buffer`, suspending while the peer does not read.
    nonisolated(nonsending) func write(_ buffer: UnsafeRawBufferPointer) async throws
}

/// A stream type backed by a socket (TCPStream, UnixStream): lets `copy` reach the socket core and
/// try a write synchronously before awaiting.
protocol SocketByteStream: AnyObject {
    var handle: SocketHandle { get }
}

extension TCPStream: SocketByteStream {}
extension UnixStream: SocketByteStream {}
