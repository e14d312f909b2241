@testable import IOPool
import Testing

/// `split()` on TCPStream and UnixStream: a read half and a write half used by two tasks at once;
/// each half shuts down its own direction and leaves the other working; the socket closes once
/// both have ended (closed or deinitialized), not before. On both pools and off-pool.
@Suite(.timeLimit(.minutes(1)))
struct StreamHalvesTests {
    enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case tcp, unix
        var testDescription: String { rawValue }
    }

    /// A connected pair, split on the first end: its halves, its socket core, and the plain peer.
    struct SplitPair: Sendable {
        let reader: StreamReadHalf
        let writer: StreamWriteHalf
        let handle: SocketHandle
        let peer: any AsyncByteReader & AsyncByteWriter
        let closePeer: @Sendable () -> Void
        let shutdownPeer: @Sendable () throws -> Void
        let writeToPeer: @Sendable ([UInt8]) async throws -> Void
    }

    static func splitPair(_ transport: Transport) async throws -> SplitPair {
        switch transport {
        case .tcp:
            let (client, server) = try await connectedTCPStreams()
            let (reader, writer) = client.split()
            return SplitPair(
                reader: reader, writer: writer, handle: client.handle, peer: server, closePeer: { server.close() },
                shutdownPeer: { try server.shutdown(.write) }, writeToPeer: { try await server.write($0) })
        case .unix:
            let (a, b) = try UnixStream.pair()
            let (reader, writer) = a.split()
            return SplitPair(
                reader: reader, writer: writer, handle: a.handle, peer: b, closePeer: { b.close() },
                shutdownPeer: { try b.shutdown(.write) }, writeToPeer: { try await b.write($0) })
        }
    }

    static let cases = Array(zip(StreamContext.allCases.flatMap { [$0, $0] }, [Transport.tcp, .unix, .tcp, .unix, .tcp, .unix]))

    @Test(arguments: cases)
    func oneTaskReadsWhileAnotherWrites(context: StreamContext, transport: Transport) async throws {
        let (sent, received) = try await onContext(context) { () async throws -> (Bool, Bool) in
            let pair = try await Self.splitPair(transport)
            defer { pair.closePeer() }
            let size = 1 << 20
            // The peer echoes: the write half's bytes come back to the read half while it writes,
            // so neither finishes unless both run at once (the kernel buffers hold far less).
            let echo = spawn { _ = try await copy(from: pair.peer, to: pair.peer); try pair.shutdownPeer() }
            let writing = spawn { () async throws -> Bool in
                try await pair.writer.write(patternBytes(size))
                pair.writer.close()
                return true
            }
            let reading = spawn { () async throws -> Bool in
                try await BufferedReader(pair.reader).readToEnd(maxBytes: size) == patternBytes(size)
            }
            let received = try await reading.value
            try await echo.value
            return (try await writing.value, received)
        }
        #expect(sent)
        #expect(received)
    }

    @Test(arguments: cases)
    func closingTheWriteHalfHalfClosesAndTheReadHalfGoesOn(context: StreamContext, transport: Transport) async throws {
        let (peerSaw, reply, open) = try await onContext(context) { () async throws -> ([UInt8], String?, Bool) in
            let pair = try await Self.splitPair(transport)
            defer { pair.closePeer() }
            try await pair.writer.write(Array("request".utf8))
            pair.writer.close()
            let peerSaw = try await readToEnd(of: pair.peer, maxBytes: 100)  // end of stream: the half-close
            let stillOpen = !isClosed(pair.handle)
            try await pair.writeToPeer(Array("reply\n".utf8))
            let reply = try await BufferedReader(pair.reader).readLine()
            return (peerSaw, reply, stillOpen)
        }
        #expect(peerSaw == Array("request".utf8))
        #expect(reply == "reply")
        #expect(open, "one half ended: the socket stays open")
    }

    @Test(arguments: cases)
    func closingTheReadHalfEndsItsReadsAndTheWriteHalfGoesOn(context: StreamContext, transport: Transport) async throws {
        let (pendingRead, laterRead, received) = try await onContext(context) { () async throws -> (String, String, [UInt8]) in
            let pair = try await Self.splitPair(transport)
            defer { pair.closePeer() }
            // A read pending in another task ends (end of stream) when the read half is closed.
            let pending = spawn { try await pair.reader.read(maxBytes: 10) }
            try await waitUntilPending(pair.handle)
            pair.reader.close()
            let pendingRead = failure(await pending.result)
            let laterRead = failure(await Result { try await pair.reader.read(maxBytes: 10) })
            try await pair.writer.write(Array("still writing".utf8))
            pair.writer.close()
            return (pendingRead, laterRead, try await readToEnd(of: pair.peer, maxBytes: 100))
        }
        #expect(pendingRead == "returned []")
        #expect(laterRead == "IOError EBADF read: the read half is closed")
        #expect(received == Array("still writing".utf8))
    }

    @Test(arguments: cases)
    func theSocketClosesWhenBothHalvesHaveEnded(context: StreamContext, transport: Transport) async throws {
        let states = try await onContext(context) { () async throws -> [String] in
            var states: [String] = []
            // Both closed.
            let pair = try await Self.splitPair(transport)
            pair.writer.close()
            states.append("after writer.close: closed \(isClosed(pair.handle))")
            pair.writer.close()  // idempotent: does not count twice
            states.append("after writer.close again: closed \(isClosed(pair.handle))")
            pair.reader.close()
            states.append("after reader.close: closed \(isClosed(pair.handle))")
            pair.closePeer()

            // One closed, the other dropped: its deinit ends it. The peer reads the write half's
            // half-close from the writer's deinit.
            var handle: SocketHandle?
            var peer: (any AsyncByteReader & AsyncByteWriter)?
            var closePeer: (@Sendable () -> Void)?
            do {
                let dropped = try await Self.splitPair(transport)
                handle = dropped.handle
                peer = dropped.peer
                closePeer = dropped.closePeer
                dropped.reader.close()
                states.append("after reader.close: closed \(isClosed(dropped.handle))")
            }
            states.append("after the writer is dropped: closed \(isClosed(handle!)), peer reads \(try await peer!.read(maxBytes: 10))")
            closePeer!()
            return states
        }
        #expect(states == [
            "after writer.close: closed false", "after writer.close again: closed false", "after reader.close: closed true",
            "after reader.close: closed false", "after the writer is dropped: closed true, peer reads []",
        ])
    }

    @Test(arguments: StreamContext.allCases)
    func aResetReachesTheReadHalfAndTheWriteHalf(context: StreamContext) async throws {
        let (read, write) = try await onContext(context) { () async throws -> (String, String) in
            let (client, server) = try await connectedTCPStreams()
            let (reader, writer) = client.split()
            defer { reader.close(); writer.close() }
            let pending = spawn { try await reader.read(maxBytes: 10) }
            try await waitUntilPending(client.handle)
            try reset(server)
            let read = failure(await pending.result)
            // The reset is known: a write fails at once (EPIPE, or ECONNRESET if not yet reported).
            let write = failure(await Result { try await writer.write(patternBytes(10)) })
            return (read, write)
        }
        #expect(read == "IOError ECONNRESET read")
        #expect(write.hasPrefix("IOError EPIPE write") || write.hasPrefix("IOError ECONNRESET write"), "\(write)")
    }

    @Test(arguments: StreamContext.allCases)
    func aCancelledReadOnTheReadHalfLosesNothingAndTheWriterIsUnaffected(context: StreamContext) async throws {
        let (cancelled, line, peerGot) = try await onContext(context) { () async throws -> (String, String?, [UInt8]) in
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            let (reader, writer) = client.split()
            let buffered = HandOff(BufferedReader(reader))
            try await server.write(Array("par".utf8))
            let pending = spawn { try await buffered.value.readLine() }
            try await waitUntilPending(client.handle)
            pending.cancel()
            let cancelled = failure(await pending.result)
            try await writer.write(Array("written meanwhile".utf8))
            writer.close()
            try await server.write(Array("tial\n".utf8))
            let line = try await buffered.value.readLine()
            reader.close()
            return (cancelled, line, try await BufferedReader(server).readToEnd(maxBytes: 100))
        }
        #expect(cancelled == "CancellationError")
        #expect(line == "partial")
        #expect(peerGot == Array("written meanwhile".utf8))
    }

    @Test func splittingTwiceTraps() async {
        await #expect(processExitsWith: .failure) {
            let (a, b) = try UnixStream.pair()
            _ = a.split()
            _ = a.split()
            b.close()
        }
    }
}

/// Everything up to end of stream, through a `BufferedReader` (which opens an existential reader).
func readToEnd(of stream: some AsyncByteReader, maxBytes: Int) async throws -> [UInt8] {
    try await BufferedReader(stream).readToEnd(maxBytes: maxBytes)
}
