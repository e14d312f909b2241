import HTTPTypes
import Hummingbird
import IOPoolHTTP
import NIOCore

/// Hummingbird's `ResponseBodyWriter` onto the server's `HTTPResponseWriter`.
///
/// The head waits for the body's first event, so that the common whole-body response (one
/// `ByteBuffer` whose size the head's `Content-Length` already states, or no body at all) goes out
/// as one `respond(_:body:)`: head and body in one write, as Hummingbird's own fast path does.
/// Anything else is streamed: `writeHead`, then each buffer as it comes (each awaits the socket),
/// then `finish` with the trailers.
///
/// Cost: none of its own; the server copies each buffer's bytes (a `ByteBufferView`, contiguous)
/// into its output, the one copy any body takes on its way to the socket.
struct ResponseWriterAdapter: ResponseBodyWriter, @unchecked Sendable {
    // @unchecked: `ResponseBody.write` is a plain nonisolated async function, so handing it the
    // writer counts as sending it; but the responder awaits that call, within `respond`, on the
    // same task (whose executor preference keeps it on the connection's thread), so the server's
    // writer is never used concurrently or after `respond` returns.
    private enum State {
        /// Nothing written: the head is still `head`.
        case pending(HTTPResponse)
        case streaming
        /// Sent whole by `respond`; nothing more may follow.
        case complete
    }

    private let writer: HTTPResponseWriter
    private var state: State

    init(writer: HTTPResponseWriter, head: HTTPResponse) {
        self.writer = writer
        self.state = .pending(head)
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        switch state {
        case .pending(let head):
            if let length = head.headerFields[.contentLength], Int(length) == buffer.readableBytes {
                state = .complete
                try await writer.respond(head, body: buffer.readableBytesView)
            } else {
                state = .streaming
                try await writer.writeHead(head)
                try await writer.write(buffer.readableBytesView)
            }
        case .streaming:
            try await writer.write(buffer.readableBytesView)
        case .complete:
            // The server rejects bytes past a finished response; an empty buffer is no bytes.
            if buffer.readableBytes > 0 { try await writer.write(buffer.readableBytesView) }
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        let trailers = trailingHeaders ?? [:]
        switch state {
        case .pending(let head):
            let statedLength = head.headerFields[.contentLength]
            if trailers.isEmpty && (statedLength == nil || statedLength == "0") {
                try await writer.respond(head)
            } else {
                // Trailers need a chunked body; a stated non-zero length with no bytes is the
                // server's to judge (a HEAD response keeps its GET's length and sends no body).
                try await writer.writeHead(head)
                try await writer.finish(trailers: trailers)
            }
        case .streaming:
            try await writer.finish(trailers: trailers)
        case .complete:
            break
        }
    }
}
