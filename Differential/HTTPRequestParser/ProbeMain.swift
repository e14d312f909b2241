import Glibc
import HTTPTypes

// What the parser makes of request files, one JSON line per file, for differential.py to compare
// with a reference parser; built with the parser's sources into one program (Fuzz/HTTPRequestParser/
// build.sh), optimised. Bytes travel as hex so that no encoding question arises.
//   http-parser-probe FILE...   {"file", "verdict": accept|reject|incomplete, ...}
//   http-parser-probe bench     the head parse of a typical wrk GET, in ns (median of 15 rounds)

func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return "\"" + String(decoding: out, as: UTF8.self) + "\""
}

func json(_ string: String) -> String {
    var out = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func fields(_ fields: HTTPFields) -> String {
    "[" + fields.map { field in
        "[" + hex(field.name.rawName.utf8) + "," + field.withUnsafeBytesOfValue { hex($0) } + "]"
    }.joined(separator: ",") + "]"
}

func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[..<n]
    }
    return bytes
}

enum Outcome {
    case accept(HTTPRequestHead, body: [UInt8], trailers: HTTPFields)
    case reject(HTTPRequestError)
    case incomplete
}

func withBuffer<R>(
    _ bytes: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) throws(HTTPRequestError) -> R
) throws(HTTPRequestError) -> R {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    return try body(UnsafeRawBufferPointer(buffer))
}

func run(_ bytes: [UInt8]) -> Outcome {
    do throws(HTTPRequestError) {
        var parser = HTTPRequestHeadParser()
        guard let (head, consumed) = try withBuffer(bytes[...], { buffer throws(HTTPRequestError) in try parser.parse(buffer) })
        else { return .incomplete }
        let rest = bytes[consumed...]
        switch head.framing {
        case .none:
            return .accept(head, body: [], trailers: [:])
        case .contentLength(let length):
            guard rest.count >= length else { return .incomplete }
            return .accept(head, body: Array(rest.prefix(length)), trailers: [:])
        case .chunked:
            var decoder = HTTPChunkedBodyDecoder()
            var body: [UInt8] = []
            var offset = rest.startIndex
            for _ in 0...(rest.count + 1) {
                let (event, used, data) = try withBuffer(bytes[offset...]) { buffer throws(HTTPRequestError) in
                    let (event, used) = try decoder.decode(buffer)
                    if case .data(let range) = event { return (event, used, Array(buffer[range])) }
                    return (event, used, [UInt8]())
                }
                offset += used
                body += data
                switch event {
                case .end(let trailers): return .accept(head, body: body, trailers: trailers)
                case .needMoreBytes: return .incomplete
                case .data: continue
                }
            }
            return .incomplete
        }
    } catch {
        return .reject(error)
    }
}

func describe(_ outcome: Outcome) -> String {
    switch outcome {
    case .incomplete:
        return "\"verdict\":\"incomplete\""
    case .reject(let error):
        return "\"verdict\":\"reject\",\"status\":\(error.status.code),\"reason\":\(json(error.reason))"
    case .accept(let head, let body, let trailers):
        let request = head.request
        let target: String
        if request.method == .connect {
            target = request.authority ?? ""
        } else if let scheme = request.scheme {
            target = scheme + "://" + (request.authority ?? "") + (request.path ?? "")
        } else {
            target = request.path ?? ""
        }
        let framing: String
        switch head.framing {
        case .none: framing = "none"
        case .contentLength(let n): framing = "length \(n)"
        case .chunked: framing = "chunked"
        }
        return "\"verdict\":\"accept\",\"method\":\(hex(request.method.rawValue.utf8)),\"target\":\(hex(target.utf8))"
            + ",\"absolute\":\(request.scheme != nil),\"version\":\"\(head.version.major).\(head.version.minor)\""
            + ",\"authority\":\(request.authority.map { hex($0.utf8) } ?? "null"),\"headers\":\(fields(request.headerFields))"
            + ",\"body\":\(hex(body)),\"trailers\":\(fields(trailers)),\"framing\":\"\(framing)\""
            + ",\"keepAlive\":\(head.keepAlive),\"expectsContinue\":\(head.expectsContinue)"
    }
}

func bench() {
    let wrkGet = Array(
        ("GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.2\r\n"
            + "Accept: text/plain,text/html;q=0.9\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n").utf8)
    let perRound = 200_000
    var rounds: [Double] = []
    wrkGet.withUnsafeBytes { buffer in
        for _ in 0..<15 {
            let start = ContinuousClock.now
            for _ in 0..<perRound {
                var parser = HTTPRequestHeadParser()
                let result = try? parser.parse(buffer)
                precondition(result?.consumed == buffer.count)
            }
            let elapsed = ContinuousClock.now - start
            rounds.append(
                (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(perRound))
        }
    }
    let median = rounds.sorted()[rounds.count / 2]
    print("head parse of a 5-field wrk GET (\(wrkGet.count) bytes): median \(Int(median)) ns over 15 rounds of \(perRound)")
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments == ["bench"] {
    bench()
} else {
    for path in arguments {
        guard let bytes = readFile(path) else {
            print("{\"file\":\(json(path)),\"verdict\":\"unreadable\"}")
            continue
        }
        print("{\"file\":\(json(path)),\(describe(run(bytes)))}")
    }
}
