import Glibc
@testable import IOPool
import Testing

/// `write(gathering:)`: several buffers as one whole write with `sendmsg`, on TCP and Unix streams
/// and a write half, on both pools and off-pool: order, empty chunks, more chunks than one
/// `sendmsg` takes, partial sends across chunk boundaries (backpressure), no interleaving with
/// concurrent writes, a reset, a cancellation.
@Suite(.timeLimit(.minutes(1)))
struct GatheredWriteTests {
    @Test(arguments: StreamContext.allCases)
    func chunksArriveInOrderIncludingEmptyOnes(context: StreamContext) async throws {
        let (tcp, unix, half) = try await onContext(context) { () async throws -> ([UInt8], [UInt8], [UInt8]) in
            let chunks: [[UInt8]] = [[], Array("len:5\n".utf8), [], Array("hello".utf8), []]
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            try await client.write(gathering: chunks)
            try await client.write(gathering: [[UInt8]]())  // nothing at all: returns at once
            try await client.write(gathering: ["slice".utf8])  // any contiguous collection
            client.close()
            let tcp = try await readToEnd(of: server, maxBytes: 100)

            let (a, b) = try UnixStream.pair()
            defer { b.close() }
            try await a.write(gathering: chunks)
            a.close()
            let unix = try await readToEnd(of: b, maxBytes: 100)

            let (c, d) = try UnixStream.pair()
            defer { d.close() }
            let (_, writer) = c.split()
            try await writer.write(gathering: [patternBytes(3)[...], patternBytes(4)[1...]])  // slices
            writer.close()
            let half = try await readToEnd(of: d, maxBytes: 100)
            return (tcp, unix, half)
        }
        #expect(tcp == Array("len:5\nhelloslice".utf8))
        #expect(unix == Array("len:5\nhello".utf8))
        #expect(half == patternBytes(3) + Array(patternBytes(4)[1...]))
    }

    @Test(arguments: StreamContext.allCases)
    func moreChunksThanOneSendmsgTakesAndPartialSendsAcrossChunks(context: StreamContext) async throws {
        let (many, large) = try await onContext(context) { () async throws -> (Bool, Bool) in
            // 3,000 small chunks: three sendmsg calls of at most 1,024 buffers.
            let small = (0..<3000).map { patternBytes($0 % 3 + 1, seed: $0) }
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            try await client.write(gathering: small)
            // Three 256 KiB chunks into a small send buffer: sends stop mid-chunk and resume there.
            try client.handle.setOption(level: SOL_SOCKET, name: SO_SNDBUF, CInt(16384), "setsockopt(SO_SNDBUF)")
            let large = (0..<3).map { patternBytes(256 << 10, seed: $0) }
            async let written: Void = client.write(gathering: large)
            let reader = BufferedReader(server)
            let receivedSmall = try await reader.readExactly(small.reduce(0) { $0 + $1.count })
            let receivedLarge = try await reader.readExactly(3 * (256 << 10))
            try await written
            client.close()
            return (receivedSmall == small.flatMap { $0 }, receivedLarge == large.flatMap { $0 })
        }
        #expect(many)
        #expect(large)
    }

    @Test(arguments: StreamContext.allCases)
    func concurrentGatheredWritesNeverInterleave(context: StreamContext) async throws {
        let frames = try await onContext(context) { () async throws -> [Int] in
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            try client.handle.setOption(level: SOL_SOCKET, name: SO_SNDBUF, CInt(16384), "setsockopt(SO_SNDBUF)")
            // Each writer sends frames of 4 chunks of 16 KiB, every byte of a frame its index.
            let writers = (0..<4).map { writer in
                spawn {
                    for frame in 0..<4 {
                        let index = UInt8(writer * 4 + frame)
                        try await client.write(gathering: Array(repeating: [UInt8](repeating: index, count: 16 << 10), count: 4))
                    }
                }
            }
            let reader = BufferedReader(server)
            var frames: [Int] = []
            for _ in 0..<16 {
                let frame = try await reader.readExactly(64 << 10)
                frames.append(frame.allSatisfy { $0 == frame[0] } ? Int(frame[0]) : -1)
            }
            for writer in writers { try await writer.value }
            client.close()
            return frames.sorted()
        }
        #expect(frames == Array(0..<16), "a -1 is a frame with another frame's bytes inside it")
    }

    @Test(arguments: StreamContext.allCases)
    func aResetPeerFailsTheGatheredWrite(context: StreamContext) async throws {
        let outcome = try await onContext(context) { () async throws -> String in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close() }
            try reset(server)
            // The RST arrives asynchronously; the first gathered writes may still be accepted.
            for _ in 0..<1000 {
                do {
                    try await client.write(gathering: [patternBytes(100), patternBytes(100)])
                } catch {
                    return describe(error)
                }
                try await sleep(for: .milliseconds(1))
            }
            return "no error after 1,000 writes"
        }
        #expect(outcome == "IOError EPIPE write (sendmsg)" || outcome == "IOError ECONNRESET write (sendmsg)", "\(outcome)")
    }

    @Test(arguments: StreamContext.allCases)
    func aCancelledGatheredWriteThrowsCancellationErrorAndTheStreamStaysUsable(context: StreamContext) async throws {
        let (cancelled, afterwards) = try await onContext(context) { () async throws -> (String, String) in
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            try client.handle.setOption(level: SOL_SOCKET, name: SO_SNDBUF, CInt(16384), "setsockopt(SO_SNDBUF)")
            try server.handle.setOption(level: SOL_SOCKET, name: SO_RCVBUF, CInt(4096), "setsockopt(SO_RCVBUF)")
            let pending = spawn { try await client.write(gathering: [patternBytes(8 << 20), patternBytes(10)]) }
            try await waitUntilPending(client.handle, .write)
            pending.cancel()
            let cancelled = failure(await pending.result)
            // The next whole write gets the turn, after the bytes the cancelled one had sent.
            let next = spawn {
                try await client.write(gathering: [Array("end".utf8)])
                try client.shutdown(.write)
            }
            let received = try await BufferedReader(server).readToEnd(maxBytes: 9 << 20)
            try await next.value
            client.close()
            return (cancelled, received.suffix(3) == Array("end".utf8) && received.count < (8 << 20) + 13 ? "ok" : "\(received.count) bytes")
        }
        #expect(cancelled == "CancellationError")
        #expect(afterwards == "ok")
    }
}
