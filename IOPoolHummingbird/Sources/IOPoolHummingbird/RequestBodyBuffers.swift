import Hummingbird
import IOPoolHTTP
import NIOCore

/// The server's request body (`[UInt8]` parts read from the connection as they are asked for) as
/// the `ByteBuffer` sequence Hummingbird's `RequestBody` is built from.
///
/// Cost: one copy per part, `[UInt8]` into a new `ByteBuffer` (a `ByteBuffer` cannot adopt an
/// array's storage). Backpressure is the server's: nothing is read ahead of `next()`.
struct RequestBodyBuffers: AsyncSequence, @unchecked Sendable {
    // @unchecked: `HTTPRequestBody` is valid only during `respond`, on the connection's task, and
    // the responder awaits the whole Hummingbird response (its body writer included) before it
    // returns, so the body is never used after that; Hummingbird only asks for `Sendable` because its
    // `RequestBody` is a value that may be stored or passed to other tasks, as NIO's is.
    typealias Element = ByteBuffer

    let body: HTTPRequestBody

    struct AsyncIterator: AsyncIteratorProtocol, SendableMetatype {
        let body: HTTPRequestBody

        mutating func next() async throws -> ByteBuffer? {
            guard let bytes = try await body.next() else { return nil }
            return ByteBuffer(bytes: bytes)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: body) }
}
