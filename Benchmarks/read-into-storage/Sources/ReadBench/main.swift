import Glibc
import IOPool

// Issue 12: the cost of one read of 64 queued bytes, by API. Each iteration writes 64 bytes on one
// end of a Unix stream pair and reads them on the other, in one task on an IOThreadPool thread
// (the sockets' owner). Usage: ReadBench <method> <iterations> [<read size, 64>]. measure.sh runs
// it under callgrind at two iteration counts; the difference cancels start-up and shutdown.

let method = CommandLine.arguments[1]
let iterations = Int(CommandLine.arguments[2])!
// The read size comes from the command line, as it would from a protocol: a constant would let
// the optimizer put read(maxBytes:)'s scratch buffer on the stack.
let size = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3])! : 64
let pool = try IOThreadPool(configuration: .init(threadCount: 1))
let result = try pool.spawn { () async throws -> Int in
    let (a, b) = try UnixStream.pair()
    let message = [UInt8](repeating: 7, count: 64)
    var appended: [UInt8] = []
    appended.reserveCapacity(64)
    let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
    let reader = BufferedReader(b)
    var checksum = 0
    // Warm up (registration, first-use allocations), then count.
    for _ in 0..<100 { try await a.write(message); _ = try await b.read(into: raw) }
    for _ in 0..<iterations {
        try await a.write(message)
        switch method {
        case "read-maxBytes":
            checksum &+= try await b.read(maxBytes: size).count
        case "read-appendingTo":
            appended.removeAll(keepingCapacity: true)
            checksum &+= try await b.read(appendingTo: &appended, maxBytes: size)
        case "read-OutputRawSpan":
            var span = OutputRawSpan(buffer: raw, initializedCount: 0)
            checksum &+= try await b.read(into: &span)
            checksum &+= span.finalize(for: raw)
        case "read-into-pointer":
            checksum &+= try await b.read(into: raw)
        case "buffered-readExactly":
            checksum &+= try await reader.readExactly(64).count
        default:
            fatalError("unknown method \(method)")
        }
    }
    a.close(); b.close(); raw.deallocate()
    return checksum
}
print("\(method): checksum \(try await result.value)")
await pool.shutdown()
