import Glibc
@testable import IOPool
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle
import Testing

/// The README's examples, compiled and run, so the README cannot drift from the API.
@Suite struct ReadmeExampleTests {
    /// README "Example": the echo server (on port 0 here), exercised by the `run` example's client.
    @Test func echoServerAndRunClient() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 4))
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        let address = try listener.localAddress

        let acceptLoop = try pool.spawn {
            try await pool.spawnAll(listener.connections) { connection in
                defer { connection.close() }
                _ = try? await copy(from: connection, to: connection)  // until the client half-closes
                try? connection.shutdown(.write)
            }
        }

        let total = try await IOThreadPool.run(configuration: .init(threadCount: 2)) { pool in
            let stream = try await TCPStream.connect(to: address)
            try await stream.write(Array("hello".utf8))
            try stream.shutdown(.write)
            var reply: [UInt8] = []
            while case let chunk = try await stream.read(), !chunk.isEmpty { reply += chunk }
            return reply.count
        }
        #expect(total == 5)

        listener.close()
        _ = await acceptLoop.result
        await pool.shutdownGracefully()
    }

    /// README: timers, and per-thread listeners.
    @Test func timersAndPerThreadListeners() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let listeners = try pool.listenOnEveryThread(SocketAddress("127.0.0.1:0"))
        try pool.acceptOnEveryThread(listeners) { connection in
            _ = try? await copy(from: connection, to: connection)
            connection.close()
        }
        let stream = try await TCPStream.connect(to: try listeners[0].localAddress)
        try await stream.write(Array("tick".utf8))
        let reply = try await withTimeout(.seconds(5)) { try await stream.read() }  // throws TimeoutError
        #expect(reply == Array("tick".utf8))
        try await sleep(for: .milliseconds(10))
        try await Task.sleep(for: .milliseconds(10), clock: .io)
        for try await tick in intervals(every: .milliseconds(1)) {
            print(tick)
            break
        }
        stream.close()
        for listener in listeners { listener.close() }
        await pool.shutdown()
    }

    actor ConnectionTable {
        let thread: IOThread
        init(thread: IOThread) { self.thread = thread }
        nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

        func isOnItsThread() -> Bool { IOThread.current === thread }
    }

    /// README: an actor pinned to a thread.
    @Test func pinnedActor() async throws {
        let table = ConnectionTable(thread: IOThreadPool.default.next())
        #expect(await table.isOnItsThread())
    }
}

/// The README's WorkStealingPool example (with stand-ins for the user's functions).
@Suite struct ReadmeWorkStealingExampleTests {
    @Test func blockingExample() async throws {
        let path = "/proc/self/stat"
        func readWholeFileSynchronously(_ path: String) throws -> [UInt8] { Array(path.utf8) }
        func checksum(_ bytes: [UInt8]) -> Int { bytes.reduce(0) { $0 &+ Int($1) } }

        let pool = try WorkStealingPool(configuration: .init(threadCount: 4, maxBlocking: 64))
        let digest = try pool.spawn {
            let bytes = try await blocking { try readWholeFileSynchronously(path) }  // hands the worker off
            return checksum(bytes)                                                    // back on the pool
        }
        print(try await digest.value)
        await pool.shutdownGracefully()
    }
}

// MARK: README "The stream toolkit: a chat server and a framed protocol" (the code verbatim)

/// The chat room: fans each line out to every client's outbox. It never awaits a client's
/// socket, so a client that stops reading stalls no one: its outbox fills (100 lines), and the
/// room drops it.
actor ChatRoom {
    private var clients: [Int: (outbox: AsyncStream<String>.Continuation, connection: TCPStream)] = [:]
    private var nextID = 0

    var count: Int { clients.count }

    func join(_ connection: TCPStream, outbox: AsyncStream<String>.Continuation) -> Int {
        nextID += 1
        clients[nextID] = (outbox, connection)
        return nextID
    }

    func leave(_ id: Int) {
        guard let client = clients.removeValue(forKey: id) else { return }
        client.outbox.finish()
        client.connection.close()  // fails its pending read and write: both of its tasks end
    }

    func broadcast(_ line: String) {
        for (id, client) in clients {
            if case .dropped = client.outbox.yield(line) { leave(id) }  // it does not read
        }
    }
}

/// One client: this task reads its lines (the read half); a second writes its outbox (the write half).
func serveChat(_ connection: TCPStream, in room: ChatRoom) async {
    let (reader, writer) = connection.split()
    let (outbox, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(100))
    let id = await room.join(connection, outbox: continuation)
    let writing = spawn {
        for await line in outbox {
            do { try await writer.write(Array((line + "\n").utf8)) } catch { break }
        }
    }
    do {
        for try await line in BufferedReader(reader).lines(maxLength: 1024) {
            await room.broadcast(line)
        }
    } catch {}  // a reset, a line over 1,024 bytes, or the room dropped us
    await room.leave(id)
    await writing.value
}

/// Length-prefixed frames: a 4-byte big-endian length, then that many bytes.
enum Frames {
    static let maxLength = 1 << 20

    /// The next frame; nil at a clean end of stream (between frames).
    nonisolated(nonsending)
    static func read<Base>(from reader: BufferedReader<Base>) async throws -> [UInt8]? {
        guard try await !reader.peek(1).isEmpty else { return nil }
        let header = try await reader.readExactly(4)  // IOError ENODATA if the stream ends inside
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard length <= maxLength else { throw FrameTooLong(length: length) }
        return try await reader.readExactly(length)
    }

    nonisolated(nonsending)
    static func write(_ payload: [UInt8], to stream: TCPStream) async throws {
        let header = withUnsafeBytes(of: UInt32(payload.count).bigEndian) { Array($0) }
        try await stream.write(gathering: [header, payload])  // one sendmsg, one whole write
    }
}

struct FrameTooLong: Error {
    let length: Int
}

@Suite(.timeLimit(.minutes(1)))
struct ReadmeStreamToolkitExampleTests {
    /// The chat server: one client never reads (its receive buffer small, so its socket fills
    /// soon); the other three still get every line, in order, within the time limit, and the
    /// stuck one is dropped.
    @Test func chatServerWithAClientThatNeverReads() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 4))
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        let address = try listener.localAddress

        let room = ChatRoom()
        let chat = try pool.spawn {
            try await pool.spawnAll(listener.connections) { connection in
                await serveChat(connection, in: room)
            }
        }

        let lineLength = 1_000
        // The stuck client's socket gets a 4 KiB receive buffer, and the server's send buffer to
        // it autotunes to at most 4 MiB (tcp_wmem): more lines than those hold, plus its 100-line
        // outbox, must get it dropped.
        let total = (4 << 20) / lineLength + 1_000
        let readers = try await (0..<3).asyncMap { _ in try await TCPStream.connect(to: address) }
        let stuck = try await TCPStream.connect(to: address)
        try stuck.handle.setOption(level: SOL_SOCKET, name: SO_RCVBUF, CInt(4096), "setsockopt(SO_RCVBUF)")
        try await waitUntilAsync("every client joined") { await room.count == 4 }

        func line(_ index: Int) -> String {
            let prefix = "line \(index) "
            return prefix + String(repeating: "x", count: lineLength - prefix.count)
        }
        let received = readers.map { _ in Counter() }
        let receiving = zip(readers, received).map { client, counter in
            spawn { () async throws -> Int in
                for try await text in BufferedReader(client).lines(maxLength: 1024) {
                    guard text == line(counter.count) else { throw TestFailure("line \(counter.count): \(text.prefix(20))") }
                    counter.increment()
                    if counter.count == total { break }
                }
                return counter.count
            }
        }
        // One sender (the first reader), 50 lines per gathered write, each batch once the readers
        // have the one before (a sender that floods faster than clients read would fill their
        // 100-line outboxes too: the room drops whoever falls 100 lines behind).
        for start in stride(from: 0, to: total, by: 50) {
            let end = min(start + 50, total)
            try await readers[0].write(gathering: (start..<end).map { Array((line($0) + "\n").utf8) })
            try await waitUntil("the readers have line \(end - 1)") { received.allSatisfy { $0.count >= end } }
        }
        for task in receiving {
            #expect(try await value(of: task) { listener.close() } == total)
        }
        try await waitUntilAsync("the client that never reads is dropped") { await room.count == 3 }

        for client in readers + [stuck] { client.close() }
        try await waitUntilAsync("every client left") { await room.count == 0 }
        listener.close()
        _ = await chat.result
        // From a task of its own: the room is a default actor that the pool's tasks keep busy,
        // so this test's calls into it can run on a pool thread, and the runtime may continue
        // this function there without a hop; shutting the pool down from one of its threads
        // traps (seen once in a full parallel run: "shutdownGracefully() awaited on iopool-3").
        await Task { await pool.shutdownGracefully() }.value
    }

    /// The framed request/response protocol, and its errors: a frame cut short by the end of the
    /// stream (ENODATA, how many bytes arrived) and a frame over the limit.
    @Test func lengthPrefixedRequestResponse() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        let address = try listener.localAddress

        let service = try pool.spawn {
            try await pool.spawnAll(listener.connections) { connection in
                defer { connection.close() }
                let requests = BufferedReader(connection)
                while let request = try? await Frames.read(from: requests) {
                    try? await Frames.write(request.reversed(), to: connection)  // the service: reverse
                }
            }
        }

        let stream = try await TCPStream.connect(to: address)
        let replies = BufferedReader(stream)
        for request in ["ping", "hello"] {
            try await Frames.write(Array(request.utf8), to: stream)
            let reply = try await Frames.read(from: replies)
            print(String(decoding: reply ?? [], as: UTF8.self))  // "gnip", "olleh"
        }
        stream.close()

        // The same code, checked rather than printed.
        let checked = try await TCPStream.connect(to: address)
        let checkedReplies = BufferedReader(checked)
        try await Frames.write(Array("ping".utf8), to: checked)
        #expect(try await Frames.read(from: checkedReplies) == Array("gnip".utf8))
        try await Frames.write([], to: checked)
        #expect(try await Frames.read(from: checkedReplies) == [])
        checked.close()

        // Cut short: a header that promises 10 bytes, then 3 and the end of the stream.
        let (a, b) = try UnixStream.pair()
        try await a.write([0, 0, 0, 10, 1, 2, 3])
        try a.shutdown(.write)
        let cut = await Result { try await Frames.read(from: BufferedReader(b)) }
        #expect(failure(cut) == "IOError ENODATA readExactly(10): end of stream after 3 of 10 bytes; they stay buffered")
        try await a.write([])
        let (c, d) = try UnixStream.pair()
        try await c.write([0x7F, 0, 0, 0])
        let tooLong = await Result { try await Frames.read(from: BufferedReader(d)) }
        #expect((tooLong.failureOrNil as? FrameTooLong)?.length == 0x7F00_0000)
        for stream in [a, b, c, d] { stream.close() }

        listener.close()
        _ = await service.result
        await pool.shutdownGracefully()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}

// MARK: README "Example" / "A client that connects by name, with a timeout and retries"

// Verbatim from the README.
struct ConnectGaveUp: Error, CustomStringConvertible {
    let target: String
    let attempts: Int
    let lastError: any Error
    var description: String { "gave up connecting to \(target) after \(attempts) attempts: \(lastError)" }
}

/// Connects by name (Happy Eyeballs over every address), each try bounded by `timeout`;
/// retries with exponential backoff, at most `attempts` tries in all.
func connectWithRetry(
    host: String, port: UInt16, attempts: Int = 5, timeout: Duration = .seconds(2)
) async throws -> TCPStream {
    var backoff = Duration.milliseconds(100)
    for attempt in 1...attempts {
        do {
            return try await TCPStream.connect(host: host, port: port, timeout: timeout)
        } catch let error as NameResolutionError where !error.isTemporary {
            throw error  // no such host: waiting will not make it exist
        } catch is CancellationError {
            throw CancellationError()
        } catch where attempt < attempts {
            try await sleep(for: backoff)  // throws CancellationError if the task is cancelled
            backoff *= 2
        } catch {
            throw ConnectGaveUp(target: "\(host):\(port)", attempts: attempt, lastError: error)
        }
    }
    preconditionFailure("attempts must be at least 1")
}

@Suite struct ReadmeConnectWithRetryExampleTests {
    @Test func connectsToAListener() async throws {
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        defer { listener.close() }
        let stream = try await connectWithRetry(host: "localhost", port: try listener.localAddress.port)
        defer { stream.close() }
        #expect(try stream.remoteAddress == listener.localAddress)
    }

    /// Nothing listens: three tries (100 + 200 ms of backoff), then the error naming the target,
    /// the count and the last failure.
    @Test func givesUpWithAClearErrorAfterTheLastAttempt() async throws {
        let refused = try refusedAddress(.ipv4)
        let result = await Result { try await connectWithRetry(host: "127.0.0.1", port: refused.port, attempts: 3) }
        guard case .failure(let error as ConnectGaveUp) = result else { Issue.record("expected ConnectGaveUp, got \(result)"); return }
        #expect(error.attempts == 3)
        #expect(describe(error.lastError) == "IOError ECONNREFUSED connect to \(refused)")
        #expect(error.description.hasPrefix("gave up connecting to 127.0.0.1:\(refused.port) after 3 attempts: connect to \(refused) failed"))
    }

    @Test func cancellationDuringTheBackoffEndsTheRetries() async throws {
        let refused = try refusedAddress(.ipv4)
        let task = Task { try await connectWithRetry(host: "127.0.0.1", port: refused.port, attempts: 1000) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        #expect(isCancellation(await task.result))
    }

    @Test func aHostThatDoesNotExistFailsAtOnce() async throws {
        let result = await Result { try await connectWithRetry(host: "nowhere.invalid", port: 80) }
        guard case .failure(let error as NameResolutionError) = result, error.code == EAI_NONAME else {
            // EAI_AGAIN (a resolver that cannot reach DNS) is retried, as it should be.
            #expect(describe(result.thrownError).contains("nowhere.invalid"))
            return
        }
        #expect(error.host == "nowhere.invalid")
    }
}

/// README "Structured accept loops, timeouts around any code, and context that survives".
@Suite(.timeLimit(.minutes(1))) struct ReadmeSpreadingAcceptLoopExampleTests {
    /// The spreading accept loop, verbatim, served to three clients, then stopped by the close.
    @Test func spreadingAcceptLoop() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 4))
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        let address = try listener.localAddress

        let server = try pool.spawn {
            try await pool.withThrowingSpreadingDiscardingTaskGroup { group in
                for try await connection in listener.connections {  // ends after listener.close()
                    group.addTask {  // on the next thread, for the connection's whole life
                        defer { connection.close() }
                        _ = try? await copy(from: connection, to: connection)
                        try? connection.shutdown(.write)
                    }
                }
            }  // returns once the loop ended and every connection's child has finished
        }

        for index in 0..<3 {
            let stream = try await TCPStream.connect(to: address)
            try await stream.write(Array("hello \(index)".utf8))
            try stream.shutdown(.write)
            var reply: [UInt8] = []
            while case let chunk = try await stream.read(), !chunk.isEmpty { reply += chunk }
            stream.close()
            #expect(String(decoding: reply, as: UTF8.self) == "hello \(index)")
        }

        // ... later, to stop accepting:
        listener.close()
        try await server.value
        await pool.shutdownGracefully()
    }

    /// The deadline around a loop that mutates the caller's local state, verbatim.
    @Test func deadlineAroundALocalLoop() async throws {
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        defer { listener.close() }
        let peer = try await TCPStream.connect(to: try listener.localAddress)
        defer { peer.close() }
        let stream = try await listener.accept()
        defer { stream.close() }
        try await peer.write(Array("hel".utf8))
        try await peer.write(Array("lo".utf8))

        var received: [UInt8] = []
        let deadline = IOClock.now.advanced(by: .seconds(5))
        try await withDeadline(deadline) {  // throws TimeoutError if the 5 s pass first
            while received.count < 5 {
                let chunk = try await stream.read()
                if chunk.isEmpty { break }
                received += chunk  // the caller's local var, mutated inside: no Sendable box
            }
        }
        #expect(received == Array("hello".utf8))
    }
}

// MARK: - README: "Running in a ServiceGroup, with logging"

/// Accepts until the group shuts down; each connection is a task on the pool.
struct EchoService: Service {
    let pool: IOThreadPool
    let listener: TCPListener

    func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await pool.spawn {
                _ = try? await pool.spawnAll(listener.connections) { connection in
                    defer { connection.close() }
                    _ = try? await copy(from: connection, to: connection)
                    try? connection.shutdown(.write)
                }
            }.value
        } onCancelOrGracefulShutdown: {
            listener.close()  // ends the accept loop; the open connections go on
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct ReadmeServiceGroupExampleTests {
    /// The README's code verbatim, except port 0 for 7000 and the group run in a task, so that the
    /// test can echo through it and then trigger the graceful shutdown a signal would.
    @Test func poolAndServerInAServiceGroup() async throws {
        let logger = Logger(label: "echo")
        let pool = try IOThreadPool(configuration: .init(threadCount: 4, logger: logger))
        let server = EchoService(pool: pool, listener: try TCPListener.bind(SocketAddress("127.0.0.1:0")))
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: pool), .init(service: server)],  // the pool first: it stops last
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(10)  // then: cancelled
        let group = ServiceGroup(configuration: configuration)
        let running = Task { try await group.run() }

        let client = try await TCPStream.connect(to: try server.listener.localAddress)
        try await client.write(Array("hello".utf8))
        try client.shutdown(.write)
        #expect(try await readToEnd(client) == Array("hello".utf8))
        client.close()
        await group.triggerGracefulShutdown()
        try await running.value
        #expect((try? pool.spawn {}) == nil, "the pool has shut down")
    }
}
