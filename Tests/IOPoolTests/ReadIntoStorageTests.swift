@testable import IOPool
import Testing

/// Reads into the caller's storage: appended to an `inout [UInt8]`, into an `OutputRawSpan` or
/// `OutputSpan<UInt8>`, on TCP, Unix and a read half, on both pools and off-pool (end of stream, a
/// reset, a cancellation, a full span); the default for readers that are not sockets; UDP batch
/// datagrams as `RawSpan`.
@Suite(.timeLimit(.minutes(1)))
struct ReadIntoStorageTests {
    @Test(arguments: StreamContext.allCases)
    func appendingToAnArrayKeepsWhatItHeldAndAddsWhatArrived(context: StreamContext) async throws {
        let results = try await onContext(context) { () async throws -> [String] in
            var results: [String] = []
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            var bytes: [UInt8] = [9, 9]
            try await client.write(patternBytes(5))
            var count = try await server.read(appendingTo: &bytes, maxBytes: 3)
            results.append("tcp read \(count): \(bytes)")
            count = try await server.read(appendingTo: &bytes)
            results.append("tcp read \(count): \(bytes)")
            client.close()
            count = try await server.read(appendingTo: &bytes)
            results.append("tcp at end \(count): \(bytes.count) bytes")
            results.append(failure(await Result { try await server.read(appendingTo: &bytes, maxBytes: 0) }))

            let (a, b) = try UnixStream.pair()
            defer { b.close() }
            try await a.write(patternBytes(4))
            var unix: [UInt8] = []
            count = try await b.read(appendingTo: &unix)
            results.append("unix read \(count): \(unix)")

            let (reader, writer) = b.split()
            try await a.write(patternBytes(2))
            count = try await reader.read(appendingTo: &unix)
            results.append("half read \(count): \(unix)")
            reader.close()
            writer.close()
            results.append(failure(await Result { try await reader.read(appendingTo: &unix) }))
            a.close()
            return results
        }
        #expect(results == [
            "tcp read 3: [9, 9, 0, 1, 2]", "tcp read 2: [9, 9, 0, 1, 2, 3, 4]", "tcp at end 0: 7 bytes",
            "IOError EINVAL read(appendingTo:maxBytes: 0): maxBytes must be at least 1 (0 means end of stream)",
            "unix read 4: [0, 1, 2, 3]", "half read 2: [0, 1, 2, 3, 0, 1]", "IOError EBADF read: the read half is closed",
        ])
    }

    @Test(arguments: StreamContext.allCases)
    func aCancelledOrResetAppendLeavesTheArrayUnchanged(context: StreamContext) async throws {
        let (cancelled, afterReset, unchanged) = try await onContext(context) { () async throws -> (String, String, Bool) in
            let (client, server) = try await connectedTCPStreams()
            let pending = spawn { () async throws -> [UInt8] in
                var bytes: [UInt8] = [1, 2, 3]
                do {
                    _ = try await server.read(appendingTo: &bytes)
                } catch {
                    // Rethrown only if the array is as it was.
                    if bytes == [1, 2, 3] { throw error }
                    return bytes
                }
                return bytes
            }
            try await waitUntilPending(server.handle)
            pending.cancel()
            let cancelled = failure(await pending.result)

            var bytes: [UInt8] = [7]
            try reset(client)
            let afterReset = failure(await Result { try await server.read(appendingTo: &bytes) })
            server.close()
            return (cancelled, afterReset, bytes == [7])
        }
        #expect(cancelled == "CancellationError")
        #expect(afterReset == "IOError ECONNRESET read")
        #expect(unchanged)
    }

    @Test(arguments: StreamContext.allCases)
    func intoOutputRawSpanAndOutputSpan(context: StreamContext) async throws {
        let results = try await onContext(context) { () async throws -> [String] in
            var results: [String] = []
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
            defer { raw.deallocate() }
            var span = OutputRawSpan(buffer: raw, initializedCount: 0)
            try await client.write(patternBytes(5))
            var count = try await server.read(into: &span)
            results.append("raw span read \(count), holds \(span.byteCount)")
            try await client.write(patternBytes(5, seed: 5))
            count = try await server.read(into: &span)  // only the 3 bytes of room left
            results.append("raw span read \(count), holds \(span.byteCount)")
            results.append(failure(await Result { try await server.read(into: &span) }))
            let initialized = span.finalize(for: raw)
            results.append("\(Array(raw[..<initialized]))")

            let typed = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 4)
            defer { typed.deallocate() }
            var output = OutputSpan(buffer: typed, initializedCount: 0)
            count = try await server.read(into: &output)  // the 2 bytes left of the second write
            results.append("span read \(count): \(Array(typed[..<output.count]))")
            client.close()
            count = try await server.read(into: &output)
            results.append("span at end \(count), holds \(output.count)")
            _ = output.finalize(for: typed)

            let (a, b) = try UnixStream.pair()
            defer { a.close() }
            try await a.write(patternBytes(2))
            var unixSpan = OutputRawSpan(buffer: raw, initializedCount: 0)
            count = try await b.read(into: &unixSpan)
            _ = unixSpan.finalize(for: raw)
            let (reader, _) = b.split()
            try await a.write(patternBytes(3))
            var halfSpan = OutputSpan(buffer: typed, initializedCount: 0)
            let halfCount = try await reader.read(into: &halfSpan)
            _ = halfSpan.finalize(for: typed)
            results.append("unix \(count), half \(halfCount)")
            return results
        }
        #expect(results == [
            "raw span read 5, holds 5", "raw span read 3, holds 8",
            "IOError EINVAL read(into: OutputRawSpan): the span is full; a read needs room for at least one byte (0 means end of stream)",
            "[0, 1, 2, 3, 4, 5, 6, 7]", "span read 2: [8, 9]", "span at end 0, holds 2", "unix 2, half 3",
        ])
    }

    @Test func theDefaultForOtherReadersAppendsThroughAScratchBuffer() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let base = RecordingReader(patternBytes(3), pinned: pool.next())
        var bytes: [UInt8] = [5]
        #expect(try await base.read(appendingTo: &bytes, maxBytes: 10) == 1)  // one byte per read
        #expect(bytes == [5, 0])
        await pool.shutdown()
    }

    @Test(arguments: StreamContext.allCases)
    func udpBatchDatagramsAsRawSpan(context: StreamContext) async throws {
        let datagrams = try await onContext(context) { () async throws -> [[UInt8]] in
            let server = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let client = try UDPSocket.bind(.loopbackIPv4(port: 0))
            defer { server.close(); client.close() }
            for index in 0..<3 { try await client.send(patternBytes(index + 1, seed: index), to: try server.localAddress) }
            let batch = UDPReceiveBatch(capacity: 8, datagramSize: 16)
            var datagrams: [[UInt8]] = []
            while datagrams.count < 3 {
                let count = try await server.receive(into: batch)
                for index in 0..<count {
                    datagrams.append(batch[index].withBytes { span in
                        (0..<span.byteCount).map { span.unsafeLoad(fromByteOffset: $0, as: UInt8.self) }
                    })
                }
            }
            return datagrams
        }
        #expect(datagrams == [patternBytes(1), patternBytes(2, seed: 1), patternBytes(3, seed: 2)])
    }
}
