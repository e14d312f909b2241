@_spi(IOPoolSupport) @testable import IOPool
import Testing

/// `BufferedReader` and `BufferedWriter` over TCP streams, on both pools and off-pool: lines (LF,
/// CRLF, a partial last line), exact counts, delimiters, to end, peek, the sequences; each limit
/// exceeded, end of stream too early, a reset, a cancellation mid-read — and no byte lost by any.
@Suite(.timeLimit(.minutes(1)))
struct BufferedReaderTests {
    @Test(arguments: StreamContext.allCases)
    func linesEndWithLFOrCRLFAndAPartialLastLineIsReturnedAtEndOfStream(context: StreamContext) async throws {
        let lines = try await onContext(context) { () async throws -> [String?] in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            try await client.write(Array("one\ntwo\r\n\nthree\r\r\npartial".utf8))
            try client.shutdown(.write)
            let reader = BufferedReader(server)
            var lines: [String?] = []
            for _ in 0..<7 { lines.append(try await reader.readLine()) }
            return lines
        }
        #expect(lines == ["one", "two", "", "three\r", "partial", nil, nil])
    }

    @Test(arguments: StreamContext.allCases)
    func bytesReadPastALineStayBufferedForTheNextCall(context: StreamContext) async throws {
        let (line, body, rest) = try await onContext(context) { () async throws -> (String?, [UInt8], [UInt8]) in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            // One write: the reader's first read takes the line and the bytes after it.
            try await client.write(Array("HEAD 4\n".utf8) + [0, 1, 2, 3] + Array("tail".utf8))
            try client.shutdown(.write)
            let reader = BufferedReader(server)
            let line = try await reader.readLine()
            return (line, try await reader.readExactly(4), try await reader.readToEnd(maxBytes: 100))
        }
        #expect(line == "HEAD 4")
        #expect(body == [0, 1, 2, 3])
        #expect(rest == Array("tail".utf8))
    }

    @Test(arguments: StreamContext.allCases)
    func aLineLongerThanTheLimitThrowsEMSGSIZENamingItAndStaysReadable(context: StreamContext) async throws {
        let (error, atLimit, after) = try await onContext(context) { () async throws -> (String, String?, String?) in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            try await client.write(Array("abcd\r\nabcdefghij\n".utf8))
            try client.shutdown(.write)
            let reader = BufferedReader(server, capacity: 4)  // the line also outgrows the buffer
            let atLimit = try await reader.readLine(maxLength: 4)  // exactly the limit, CRLF after it
            let error = failure(await Result { try await reader.readLine(maxLength: 4) })
            return (error, atLimit, try await reader.readLine(maxLength: 100))
        }
        #expect(atLimit == "abcd")
        #expect(error.hasPrefix("IOError EMSGSIZE readLine(maxLength: 4): no line feed within the limit of 4 bytes"), "\(error)")
        #expect(after == "abcdefghij", "the bytes of the refused line stay buffered")
    }

    @Test(arguments: StreamContext.allCases)
    func readExactlyThrowsENODATASayingHowManyArrivedAndKeepsThem(context: StreamContext) async throws {
        let outcomes = try await onContext(context) { () async throws -> [String] in
            var outcomes: [String] = []
            for (capacity, sent, wanted) in [(64, 3, 8), (16, 40, 100)] {  // gathered in the buffer; read straight into the result
                let (client, server) = try await connectedTCPStreams()
                defer { client.close(); server.close() }
                try await client.write(patternBytes(sent))
                try client.shutdown(.write)
                let reader = BufferedReader(server, capacity: capacity)
                outcomes.append(failure(await Result { try await reader.readExactly(wanted) }))
                let kept = try await reader.readToEnd(maxBytes: 1000)
                outcomes.append(kept == patternBytes(sent) ? "kept \(kept.count)" : "lost bytes: \(kept)")
            }
            return outcomes
        }
        #expect(outcomes == [
            "IOError ENODATA readExactly(8): end of stream after 3 of 8 bytes; they stay buffered", "kept 3",
            "IOError ENODATA readExactly(100): end of stream after 40 of 100 bytes; they stay buffered", "kept 40",
        ])
    }

    @Test(arguments: StreamContext.allCases)
    func readExactlyLargerThanTheBufferReadsEveryByte(context: StreamContext) async throws {
        let same = try await onContext(context) { () async throws -> Bool in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            let data = patternBytes(3 << 20)
            async let written: Void = client.write(data)
            let reader = BufferedReader(server, capacity: 1024)
            let head = try await reader.readExactly(10)
            let body = try await reader.readExactly(data.count - 10)
            try await written
            return head + body == data
        }
        #expect(same)
    }

    @Test(arguments: StreamContext.allCases)
    func readToEndOverTheLimitThrowsEMSGSIZEAndKeepsTheBytes(context: StreamContext) async throws {
        let (error, all) = try await onContext(context) { () async throws -> (String, [UInt8]) in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            try await client.write(patternBytes(20))
            try client.shutdown(.write)
            let reader = BufferedReader(server, capacity: 4)
            let error = failure(await Result { try await reader.readToEnd(maxBytes: 10) })
            return (error, try await reader.readToEnd(maxBytes: 20))
        }
        #expect(error.hasPrefix("IOError EMSGSIZE readToEnd(maxBytes: 10): more than 10 bytes before end of stream"), "\(error)")
        #expect(all == patternBytes(20))
    }

    @Test(arguments: StreamContext.allCases)
    func untilADelimiterAndPeek(context: StreamContext) async throws {
        let results = try await onContext(context) { () async throws -> [String] in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            try await client.write(Array("key=value;toolongrecord;last".utf8))
            try client.shutdown(.write)
            let reader = BufferedReader(server)
            func text(_ bytes: [UInt8]?) -> String { bytes.map { String(decoding: $0, as: UTF8.self) } ?? "nil" }
            var results = [text(try await reader.peek(3)), text(try await reader.read(until: UInt8(ascii: "="), maxLength: 10))]
            results.append(text(try await reader.read(until: UInt8(ascii: ";"), maxLength: 10)))
            results.append(failure(await Result { try await reader.read(until: UInt8(ascii: ";"), maxLength: 5) }))
            results.append(text(try await reader.read(until: UInt8(ascii: ";"), maxLength: 20)))
            results.append(text(try await reader.read(until: UInt8(ascii: ";"), maxLength: 20)))
            results.append("ended \(reader.hasReachedEnd)")
            results.append(text(try await reader.peek(5)))
            results.append(text(try await reader.read(until: UInt8(ascii: ";"), maxLength: 20)))
            return results
        }
        #expect(results == [
            "key", "key", "value",
            "IOError EMSGSIZE read(until: 59, maxLength: 5): no delimiter 59 within the limit of 5 bytes; the 18 bytes read stay buffered",
            "toolongrecord", "last", "ended true", "", "nil",
        ])
    }

    @Test(arguments: StreamContext.allCases)
    func theLinesAndChunksSequencesShareTheBuffer(context: StreamContext) async throws {
        let (lines, rest) = try await onContext(context) { () async throws -> ([String], [UInt8]) in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            try await client.write(Array("a\nb\r\nc\n\nSTOP\n".utf8) + patternBytes(50_000))
            try client.shutdown(.write)
            let reader = BufferedReader(server)
            var lines: [String] = []
            for try await line in reader.lines {
                if line == "STOP" { break }
                lines.append(line)
            }
            var rest: [UInt8] = []
            for try await chunk in reader.chunks(maxBytes: 4096) {
                #expect(chunk.count <= 4096)
                rest += chunk
            }
            return (lines, rest)
        }
        #expect(lines == ["a", "b", "c", ""])
        #expect(rest == patternBytes(50_000))
    }

    @Test(arguments: StreamContext.allCases)
    func aResetFailsTheReadWithECONNRESET(context: StreamContext) async throws {
        let outcome = try await onContext(context) { () async throws -> String in
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            let reader = BufferedReader(server)
            try await client.write(Array("complete\npar".utf8))
            let first = try await reader.readLine()
            try reset(client)
            return "\(first ?? "nil") then \(describe(await Result { try await reader.readLine() }.failureOrNil))"
        }
        #expect(outcome == "complete then IOError ECONNRESET read")
    }

    /// The design's promise: a cancelled readLine leaves the partial line buffered, and the next
    /// call (in another task) returns the whole line.
    @Test(arguments: StreamContext.allCases)
    func aCancelledReadLineLeavesThePartialLineForTheNextCall(context: StreamContext) async throws {
        let (cancelled, line, exact) = try await onContext(context) { () async throws -> (String, String?, String) in
            let (client, server) = try await connectedTCPStreams()
            defer { client.close(); server.close() }
            let reader = HandOff(BufferedReader(server, capacity: 8))
            try await client.write(Array("hel".utf8))
            let pending = spawn { try await reader.value.readLine() }
            try await waitUntilPending(server.handle)
            pending.cancel()
            let cancelled = failure(await pending.result)
            try await client.write(Array("lo, world\n".utf8))
            let line = try await spawn { try await reader.value.readLine() }.value

            // The same for an exact read larger than the buffer (read straight into its result).
            try await client.write(patternBytes(10))
            let exact = spawn { try await reader.value.readExactly(20) }
            try await waitUntilPending(server.handle)
            exact.cancel()
            _ = await exact.result
            try await client.write(patternBytes(10, seed: 10))
            let all = try await spawn { try await reader.value.readExactly(20) }.value
            return (cancelled, line, all == patternBytes(20) ? "all 20" : "\(all)")
        }
        #expect(cancelled == "CancellationError")
        #expect(line == "hello, world")
        #expect(exact == "all 20")
    }

    @Test func negativeLimitsThrowEINVAL() async throws {
        let (a, b) = try UnixStream.pair()
        defer { a.close(); b.close() }
        let reader = BufferedReader(a)
        #expect(failure(await Result { try await reader.readLine(maxLength: -1) }) == "IOError EINVAL readLine(maxLength: -1): maxLength must not be negative")
        #expect(failure(await Result { try await reader.readExactly(-2) }) == "IOError EINVAL readExactly(-2): count must not be negative")
        #expect(failure(await Result { try await reader.readToEnd(maxBytes: -3) }) == "IOError EINVAL readToEnd(maxBytes: -3): maxBytes must not be negative")
        #expect(failure(await Result { try await reader.read(maxBytes: 0) }).hasPrefix("IOError EINVAL read(maxBytes: 0)"))
        #expect(try await reader.readExactly(0) == [])
    }

    /// `next(isolation:)` runs on the iterating actor: the base reader's reads happen on the thread
    /// the actor is pinned to, not on the global executor (where a hop would put them).
    @Test func theSequencesDoNotHopOffTheIteratingActor() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let actor = PinnedLineReader(thread: pool.next())
        let (threadsOfReads, lines) = try await actor.readAll(Array("x\ny\nz".utf8))
        #expect(lines == ["x", "y", "z"])
        #expect(threadsOfReads == ["pinned"])
        await pool.shutdown()
    }

    @Test(arguments: StreamContext.allCases)
    func theWriterSendsNothingUntilFlushAndKeepsOrder(context: StreamContext) async throws {
        let (buffered, received) = try await onContext(context) { () async throws -> ([Int], [UInt8]) in
            let (client, server) = try await connectedTCPStreams()
            defer { server.close() }
            let writer = BufferedWriter(client, capacity: 16)
            var buffered: [Int] = []
            try await writer.write(Array("abc".utf8))
            try await writer.write("defg".utf8)
            buffered.append(writer.bufferedByteCount)
            try await writer.write(patternBytes(12))  // does not fit: flushes the 7, then buffers
            buffered.append(writer.bufferedByteCount)
            try await writer.write(patternBytes(100, seed: 1))  // larger than the buffer: flush, then through it
            buffered.append(writer.bufferedByteCount)
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 5, alignment: 1)
            defer { raw.deallocate() }
            raw.copyBytes(from: patternBytes(5, seed: 2))
            try await writer.write(UnsafeRawBufferPointer(raw))
            buffered.append(writer.bufferedByteCount)
            try await writer.flush()
            buffered.append(writer.bufferedByteCount)
            try client.shutdown(.write)
            return (buffered, try await BufferedReader(server).readToEnd(maxBytes: 1000))
        }
        #expect(buffered == [7, 12, 4, 9, 0])
        #expect(received == Array("abcdefg".utf8) + patternBytes(12) + patternBytes(100, seed: 1) + patternBytes(5, seed: 2))
    }
}

extension Result {
    var failureOrNil: any Error {
        switch self {
        case .success: return TestFailure("no error")
        case .failure(let error): return error
        }
    }
}

/// A reader of in-memory bytes, one byte per read, recording where each read ran.
final class RecordingReader: AsyncByteReader {
    private let state: Locked<(bytes: [UInt8], threads: Set<String>)>
    let pinned: IOThread

    init(_ bytes: [UInt8], pinned: IOThread) {
        state = Locked((bytes, []))
        self.pinned = pinned
    }

    var threads: Set<String> { state.withLock { $0.threads } }

    nonisolated(nonsending)
    func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        await Task.yield()  // a real suspension, as a socket's read may make
        let here = IOThread.current === pinned ? "pinned" : "elsewhere"
        return state.withLock { state in
            state.threads.insert(here)
            guard let byte = state.bytes.first else { return 0 }
            state.bytes.removeFirst()
            buffer[0] = byte
            return 1
        }
    }
}

actor PinnedLineReader {
    let thread: IOThread
    init(thread: IOThread) { self.thread = thread }
    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    func readAll(_ bytes: [UInt8]) async throws -> ([String], [String]) {
        let base = RecordingReader(bytes, pinned: thread)
        let reader = BufferedReader(base)
        var lines: [String] = []
        for try await line in reader.lines { lines.append(line) }
        return (base.threads.sorted(), lines)
    }
}
