import Glibc
import HTTPTypes

/// Decodes a `Transfer-Encoding: chunked` request body (RFC 9112 §7.1): hex chunk sizes (overflow:
/// 400), chunk extensions (checked bytes, bounded by ``HTTPRequestLimits/maxChunkExtensionLength``,
/// otherwise ignored), the CRLF after each chunk's data, the last chunk `0` and the trailer
/// section (the head's field rules; over ``HTTPRequestLimits/maxHeaderCount`` fields or
/// ``HTTPRequestLimits/maxHeaderBytes`` bytes: 431). Body bytes over
/// ``HTTPRequestLimits/maxBodySize``: 413, as soon as a chunk size says so.
///
/// A chunk-size line and a trailer line are consumed only once complete (the caller hands the
/// unconsumed rest back with more bytes); chunk data is handed out as it arrives. After `.end` the
/// decoder is reset for the next body.
public struct HTTPChunkedBodyDecoder: Sendable {
    public let limits: HTTPRequestLimits

    public enum Event: Sendable, Hashable {
        case needMoreBytes
        case data(Range<Int>)
        case end(trailers: HTTPFields)
    }

    private enum State: Sendable {
        case size
        case data(remaining: Int)
        case dataCRLF
        case trailers
    }

    private var state = State.size
    private var bodySize = 0
    private var trailers = HTTPFields()
    private var trailerCount = 0
    private var trailerBytes = 0

    public init(limits: HTTPRequestLimits = .init()) {
        self.limits = limits
    }

    /// The most hex digits a chunk size may have, leading zeros included: 16 hold any Int; more
    /// than that is refused as an overflow before it is parsed.
    private static let maxSizeDigits = 16

    /// Decodes from the start of `bytes` (what follows the bytes consumed by earlier calls).
    /// Returns the next event and how many bytes of `bytes` it consumed; `.data(range)` lies within
    /// 0..<consumed. `.needMoreBytes` may still consume framing bytes. Counts body bytes against
    /// maxBodySize (413).
    public mutating func decode(
        _ bytes: UnsafeRawBufferPointer
    ) throws(HTTPRequestError) -> (event: Event, consumed: Int) {
        var offset = 0
        while true {
            switch state {
            case .size:
                guard let consumed = try decodeSizeLine(bytes, from: offset) else {
                    return (.needMoreBytes, offset)
                }
                offset += consumed
            case .data(let remaining):
                let available = bytes.count - offset
                if available == 0 { return (.needMoreBytes, offset) }
                let take = min(available, remaining)
                state = take == remaining ? .dataCRLF : .data(remaining: remaining - take)
                return (.data(offset..<(offset + take)), offset + take)
            case .dataCRLF:
                let available = bytes.count - offset
                if available >= 1 && bytes[offset] != HTTPByteClass.cr
                    || available >= 2 && bytes[offset + 1] != HTTPByteClass.lf
                {
                    throw HTTPRequestError(status: .badRequest, reason: "chunk data not followed by CRLF")
                }
                if available < 2 { return (.needMoreBytes, offset) }
                offset += 2
                state = .size
            case .trailers:
                guard let (consumed, ended) = try decodeTrailerLine(bytes, from: offset) else {
                    return (.needMoreBytes, offset)
                }
                offset += consumed
                if ended {
                    let fields = trailers
                    self = HTTPChunkedBodyDecoder(limits: limits)
                    return (.end(trailers: fields), offset)
                }
            }
        }
    }

    /// `chunk-size [ chunk-ext ] CRLF`: the bytes consumed, or nil until the line is complete.
    private mutating func decodeSizeLine(
        _ bytes: UnsafeRawBufferPointer, from start: Int
    ) throws(HTTPRequestError) -> Int? {
        var i = start
        var size = 0
        while i < bytes.count, let digit = HTTPByteClass.hexValue(bytes[i]) {
            if i - start >= Self.maxSizeDigits {
                throw HTTPRequestError(
                    status: .badRequest, reason: "chunk size of more than \(Self.maxSizeDigits) hex digits")
            }
            if size > (Int.max - digit) / 16 {
                throw HTTPRequestError(status: .badRequest, reason: "chunk size overflows")
            }
            size = size * 16 + digit
            i += 1
        }
        if i == bytes.count { return nil }
        if i == start {
            throw HTTPRequestError(
                status: .badRequest, reason: "chunk size line not starting with a hex digit: \(HTTPByteClass.describe(bytes[i]))")
        }
        // Refuse an oversized body at its size line, before any of its data is handed out.
        if size > limits.maxBodySize - bodySize {
            throw HTTPRequestError(
                status: .contentTooLarge, reason: "chunked body over the limit of \(limits.maxBodySize) bytes")
        }
        let extensionStart = i
        let extensionLimit = extensionStart + limits.maxChunkExtensionLength
        while i < bytes.count {
            let byte = bytes[i]
            if byte == HTTPByteClass.cr { break }
            if i >= extensionLimit {
                throw HTTPRequestError(
                    status: .badRequest,
                    reason: "chunk extension over the limit of \(limits.maxChunkExtensionLength) bytes")
            }
            if byte == HTTPByteClass.lf {
                throw HTTPRequestError(status: .badRequest, reason: "bare LF after a chunk size")
            }
            if i == extensionStart && byte != HTTPByteClass.semicolon && !HTTPByteClass.isWhitespace(byte) {
                throw HTTPRequestError(
                    status: .badRequest, reason: "invalid byte \(HTTPByteClass.describe(byte)) after the chunk size")
            }
            if !HTTPByteClass.isFieldValue(byte) {
                throw HTTPRequestError(
                    status: .badRequest, reason: "invalid byte \(HTTPByteClass.describe(byte)) in a chunk extension")
            }
            i += 1
        }
        if i == bytes.count { return nil }
        if i > extensionStart {
            // BWS is allowed only before a ";" (RFC 9112 §7.1.1): whitespace alone is no extension.
            let trimmed = bytes.trimmingWhitespace(extensionStart..<i)
            if trimmed.isEmpty || bytes[trimmed.lowerBound] != HTTPByteClass.semicolon {
                throw HTTPRequestError(status: .badRequest, reason: "whitespace after the chunk size without an extension")
            }
        }
        if i + 1 >= bytes.count { return nil }
        if bytes[i + 1] != HTTPByteClass.lf {
            throw HTTPRequestError(status: .badRequest, reason: "bare CR in a chunk size line")
        }
        bodySize += size
        state = size == 0 ? .trailers : .data(remaining: size)
        return i + 2 - start
    }

    /// One trailer field line or the blank line ending the body: (bytes consumed, whether it was
    /// the blank line), or nil until the line is complete.
    private mutating func decodeTrailerLine(
        _ bytes: UnsafeRawBufferPointer, from start: Int
    ) throws(HTTPRequestError) -> (Int, Bool)? {
        let available = bytes.count - start
        guard available > 0, let base = bytes.baseAddress else { return nil }
        let searchLength = min(available, limits.maxHeaderBytes - trailerBytes + 1)
        guard let found = memchr(base + start, Int32(HTTPByteClass.lf), searchLength) else {
            if available > searchLength || trailerBytes + available > limits.maxHeaderBytes {
                throw HTTPRequestError(
                    status: .requestHeaderFieldsTooLarge, reason: "trailer section over \(limits.maxHeaderBytes) bytes")
            }
            return nil
        }
        let lf = base.distance(to: UnsafeRawPointer(found))
        if lf == start || bytes[lf - 1] != HTTPByteClass.cr {
            throw HTTPRequestError(status: .badRequest, reason: "bare LF (a line ending without CR) in the trailer section")
        }
        let lineLength = lf + 1 - start
        trailerBytes += lineLength
        if trailerBytes > limits.maxHeaderBytes {
            throw HTTPRequestError(
                status: .requestHeaderFieldsTooLarge, reason: "trailer section over \(limits.maxHeaderBytes) bytes")
        }
        if lf == start + 1 { return (lineLength, true) }
        trailerCount += 1
        if trailerCount > limits.maxHeaderCount {
            throw HTTPRequestError(
                status: .requestHeaderFieldsTooLarge, reason: "more than \(limits.maxHeaderCount) trailer fields")
        }
        let (name, value, valueIsASCII) = try HTTPFieldLineParser.split(bytes, line: start..<(lf - 1), section: "trailer")
        trailers.append(HTTPFieldLineParser.field(bytes, name: name, value: value, valueIsASCII: valueIsASCII))
        return (lineLength, false)
    }
}
