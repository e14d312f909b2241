import HTTPTypes
import IOPoolHTTP

/// Runs the head parser over whole requests or over pieces, as the server does.
enum ParserTestSupport {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// `bytes` as a buffer for the parser, with its typed throws kept (Array.withUnsafeBytes
    /// rethrows untyped). A copy, so that reading past `bytes.count` is caught by ASan in the fuzzer
    /// and cannot read a neighbouring array's bytes here.
    static func withBuffer<R>(
        _ bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws(HTTPRequestError) -> R
    ) throws(HTTPRequestError) -> R {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        return try body(UnsafeRawBufferPointer(buffer))
    }

    /// Parses `bytes` in one call: the head and what it consumed, nil when incomplete.
    static func parse(
        _ bytes: [UInt8], limits: HTTPRequestLimits = .init()
    ) throws(HTTPRequestError) -> (head: HTTPRequestHead, consumed: Int)? {
        var parser = HTTPRequestHeadParser(limits: limits)
        return try withBuffer(bytes) { buffer throws(HTTPRequestError) in try parser.parse(buffer) }
    }

    static func parse(_ text: String, limits: HTTPRequestLimits = .init()) throws(HTTPRequestError) -> HTTPRequestHead? {
        try parse(bytes(text), limits: limits)?.head
    }

    /// The error a request is refused with, nil when it parses (or is incomplete).
    static func error(_ text: String, limits: HTTPRequestLimits = .init()) -> HTTPRequestError? {
        error(bytes(text), limits: limits)
    }

    static func error(_ bytes: [UInt8], limits: HTTPRequestLimits = .init()) -> HTTPRequestError? {
        do {
            _ = try parse(bytes, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    /// The outcome of feeding `bytes` growing from `split` to all of it, the way a server
    /// re-calls with the same bytes plus more.
    static func parseInTwo(
        _ bytes: [UInt8], split: Int, limits: HTTPRequestLimits = .init()
    ) -> Result<(head: HTTPRequestHead, consumed: Int)?, HTTPRequestError> {
        var parser = HTTPRequestHeadParser(limits: limits)
        do throws(HTTPRequestError) {
            let first = try withBuffer(Array(bytes[..<split])) { buffer throws(HTTPRequestError) in
                try parser.parse(buffer)
            }
            if let first { return .success(first) }
            return .success(
                try withBuffer(bytes) { buffer throws(HTTPRequestError) in try parser.parse(buffer) })
        } catch {
            return .failure(error)
        }
    }

    /// Decodes a chunked body fed in pieces of `pieceSize` bytes (the unconsumed rest is handed back
    /// with the next piece): the body, the trailers, and the bytes left after the body.
    static func decodeChunked(
        _ bytes: [UInt8], pieceSize: Int = .max, limits: HTTPRequestLimits = .init()
    ) throws(HTTPRequestError) -> (body: [UInt8], trailers: HTTPFields, rest: [UInt8])? {
        var decoder = HTTPChunkedBodyDecoder(limits: limits)
        var pending: [UInt8] = []
        var fed = 0
        var body: [UInt8] = []
        var rounds = 0
        while rounds < 1_000_000 {
            rounds += 1
            let (event, consumed) = try withBuffer(pending) { buffer throws(HTTPRequestError) in
                let (event, consumed) = try decoder.decode(buffer)
                if case .data(let range) = event { body += buffer[range] }
                return (event, consumed)
            }
            pending.removeFirst(consumed)
            switch event {
            case .end(let trailers):
                return (body, trailers, pending + bytes[fed...])
            case .data:
                continue
            case .needMoreBytes:
                if fed == bytes.count { return nil }
                let next = min(bytes.count, fed + min(pieceSize, bytes.count - fed))
                pending += bytes[fed..<next]
                fed = next
            }
        }
        fatalError("decoder made no progress")
    }

    static func chunkedError(_ text: String, limits: HTTPRequestLimits = .init()) -> HTTPRequestError? {
        do {
            _ = try decodeChunked(bytes(text), limits: limits)
            return nil
        } catch {
            return error
        }
    }
}
