import HTTPTypes

// libFuzzer target for the request-head parser and the chunked body decoder, compiled with the
// parser's sources into one module (build.sh). No input may crash them (ASan catches reading past
// the buffer), and feeding an input in pieces must give what feeding it whole gives: the server
// calls both with whatever has arrived. A broken property traps, which libFuzzer reports as a crash
// and saves the input.

/// The default limits and small ones, so that short inputs reach every limit's branch.
private let limitSets: [HTTPRequestLimits] = {
    var small = HTTPRequestLimits()
    small.maxRequestLineLength = 48
    small.maxHeaderBytes = 192
    small.maxHeaderCount = 6
    small.maxBodySize = 64
    small.maxChunkExtensionLength = 12
    return [HTTPRequestLimits(), small]
}()

private enum HeadOutcome: Equatable {
    case incomplete
    case parsed(HTTPRequestHead, consumed: Int)
    case refused(HTTPRequestError)
}

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        print("FUZZ PROPERTY BROKEN: \(message())")
        fatalError(message())
    }
}

/// A private copy of `bytes[range]`: ASan then catches any read past its end.
private func withCopy<R>(
    _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> R
) -> R {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: range.count, alignment: 1)
    defer { copy.deallocate() }
    if !range.isEmpty { copy.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[range])) }
    return body(UnsafeRawBufferPointer(copy))
}

private func parseHead(_ bytes: UnsafeRawBufferPointer, split: Int, limits: HTTPRequestLimits) -> HeadOutcome {
    var parser = HTTPRequestHeadParser(limits: limits)
    do throws(HTTPRequestError) {
        if split < bytes.count {
            let first = try withCopy(bytes, 0..<split) { prefix in
                Result { () throws(HTTPRequestError) in try parser.parse(prefix) }
            }.get()
            if let first { return .parsed(first.head, consumed: first.consumed) }
        }
        let whole = try withCopy(bytes, 0..<bytes.count) { all in
            Result { () throws(HTTPRequestError) in try parser.parse(all) }
        }.get()
        guard let whole else { return .incomplete }
        check(whole.consumed > 0 && whole.consumed <= bytes.count, "consumed \(whole.consumed) of \(bytes.count)")
        return .parsed(whole.head, consumed: whole.consumed)
    } catch {
        check(!error.reason.isEmpty, "an error without a reason")
        check([400, 413, 414, 417, 431, 501, 505].contains(error.status.code), "unexpected status \(error.status)")
        return .refused(error)
    }
}

private struct BodyOutcome: Equatable {
    var body: [UInt8] = []
    var trailers: HTTPFields? = nil
    var consumed = 0
    var error: HTTPRequestError? = nil
}

/// Decodes `bytes` as a chunked body, handing the decoder at most `pieceSize` new bytes at a time
/// (plus what it left unconsumed), as a server reading from a socket would.
private func decodeChunked(_ bytes: UnsafeRawBufferPointer, pieceSize: Int, limits: HTTPRequestLimits) -> BodyOutcome {
    var decoder = HTTPChunkedBodyDecoder(limits: limits)
    var outcome = BodyOutcome()
    var start = 0
    var available = min(pieceSize, bytes.count)
    // Every round consumes bytes or feeds more, so 2 × count + 2 rounds are enough.
    for _ in 0...(2 * bytes.count + 2) {
        let step = withCopy(bytes, start..<(start + available)) { window in
            Result { () throws(HTTPRequestError) in
                let (event, consumed) = try decoder.decode(window)
                check(consumed >= 0 && consumed <= window.count, "decoder consumed \(consumed) of \(window.count)")
                var data: [UInt8] = []
                if case .data(let range) = event {
                    check(!range.isEmpty && range.lowerBound >= 0 && range.upperBound <= consumed, "data \(range) beyond consumed \(consumed)")
                    data = Array(window[range])
                }
                return (event, consumed, data)
            }
        }
        switch step {
        case .failure(let error):
            outcome.error = error
            return outcome
        case .success(let (event, consumed, data)):
            start += consumed
            available -= consumed
            outcome.body += data
            switch event {
            case .end(let trailers):
                outcome.trailers = trailers
                outcome.consumed = start
                return outcome
            case .data:
                break
            case .needMoreBytes:
                if start + available == bytes.count {
                    outcome.consumed = start
                    return outcome
                }
                available = min(available + pieceSize, bytes.count - start)
            }
        }
    }
    check(false, "the chunked decoder made no progress")
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    for limits in limitSets {
        let whole = parseHead(bytes, split: size, limits: limits)
        let splits = [size / 2, size > 0 ? (Int(bytes[size - 1]) &* 131 &+ size) % size : 0]
        for split in splits {
            let pieces = parseHead(bytes, split: split, limits: limits)
            switch (whole, pieces) {
            case (.refused, .refused):
                // The same bytes may be refused for two reasons (an over-long line that also holds
                // a bare LF): which one is seen first depends on what has arrived.
                break
            default:
                check(whole == pieces, "head whole \(whole) vs split at \(split) \(pieces)")
            }
        }
        // The body: what follows a chunked head, or the input itself (most inputs have no head).
        var bodyStart = 0
        if case .parsed(let head, let consumed) = whole, head.framing == .chunked { bodyStart = consumed }
        let body = UnsafeRawBufferPointer(rebasing: bytes[bodyStart...])
        let wholeBody = decodeChunked(body, pieceSize: max(body.count, 1), limits: limits)
        for pieceSize in [1, 7] {
            let inPieces = decodeChunked(body, pieceSize: pieceSize, limits: limits)
            check(inPieces == wholeBody, "chunked whole \(wholeBody) vs pieces of \(pieceSize) \(inPieces)")
        }
    }
    return 0
}
