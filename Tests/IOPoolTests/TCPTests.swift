import Glibc
@_spi(IOPoolSupport) @testable import IOPool
import Synchronization
import SystemPackage
import Testing

/// TCP: ports of tokio-io-pool's socket tests (`spawn_all`, `run`) and the guarantees documented on
/// `TCPStream`, `TCPListener` and `copy`.
///
/// Every server binds 127.0.0.1 port 0. No assertion depends on timing. The suite's time limit is only
/// a hang guard: where a test awaits something that a bug could keep pending forever, the wait is
/// wrapped so that the test's cancellation (the time limit) closes the socket or shuts the pool down,
/// and the test then fails instead of hanging.
@Suite(.timeLimit(.minutes(1)))
struct TCPTests {
    // MARK: tokio-io-pool ports

    // tokio-io-pool `spawn_all`: an echo server whose accept loop is `spawnAll` over the listener.
    @Test func spawnAllEcho() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let acceptLoop = try pool.spawn { () async -> String in
            do throws(SpawnAllError<any Error>) {
                try await pool.spawnAll(listener.connections) { connection in
                    _ = try? await copy(from: connection, to: connection)
                    try? connection.shutdown(.write)
                }
                return "the accept loop ended without an error"
            } catch {
                return describe(error)
            }
        }

        for message in ["hello world", "bye world"] {
            let client = try await TCPStream.connect(to: address)
            try await client.write(Array(message.utf8))
            try client.shutdown(.write)
            let echoed = try await readToEnd(client)
            #expect(String(decoding: echoed, as: UTF8.self) == message)
            client.close()
        }

        // Closing the listener ends `connections` (the pending accept sees the close), which ends
        // spawnAll without an error. The close's wake-up reaches the loop before shutdown()'s
        // cancellation, so a CancellationError here would mean the close did not wake the accept.
        listener.close()
        await pool.shutdown()
        let ending = await acceptLoop.value
        #expect(ending == "the accept loop ended without an error", "\(ending)")
        #expect(pool.liveTaskCount == 0)
    }

    // tokio-io-pool `run`: `IOThreadPool.run` serves two echo connections whose handlers are placed
    // with the free `spawn {}`, and returns once they are done.
    @Test func runEcho() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let handlersOnTheirAcceptThread = Counter()
        let handlersDone = Counter()

        let clients = Task { () async throws -> [String] in
            var echoes: [String] = []
            for message in ["hello world", "bye world"] {
                let client = try await TCPStream.connect(to: address)
                try await client.write(Array(message.utf8))
                try client.shutdown(.write)
                echoes.append(String(decoding: try await readToEnd(client), as: UTF8.self))
                client.close()
            }
            return echoes
        }

        let runPool = Locked<IOThreadPool?>(nil)  // for the hang guard below
        let accepted = try await withTaskCancellationHandler {
            try await IOThreadPool.run(configuration: .init(threadCount: 2)) { pool in
                runPool.withLock { $0 = pool }
                let home = IOThread.current
                var count = 0
                for try await connection in listener.connections {
                    spawn {
                        if IOThread.current === home { handlersOnTheirAcceptThread.increment() }
                        _ = try? await copy(from: connection, to: connection)
                        try? connection.shutdown(.write)
                        handlersDone.increment()
                    }
                    count += 1
                    if count == 2 { break }
                }
                return count
            }
        } onCancel: {
            // Ends the accept loop, the clients and, by escalating run's graceful shutdown, handlers
            // stuck on a bug.
            listener.close()
            clients.cancel()
            if let pool = runPool.withLock({ $0 }) { Task { await pool.shutdown() } }
        }
        listener.close()

        #expect(accepted == 2)
        // run() returns only after every task spawned on its pool has finished.
        #expect(handlersDone.count == 2)
        #expect(handlersOnTheirAcceptThread.count == 2, "free spawn keeps children on the caller's IOThread")
        let echoes = try await value(of: clients) {}
        #expect(echoes == ["hello world", "bye world"])
    }

    // MARK: Stream semantics

    @Test func halfCloseBothWays() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress

        // Client half-closes; the server reads to EOF and then still replies.
        let server1 = try pool.spawn { () async throws -> [UInt8] in
            let connection = try await listener.accept()
            let request = try await readToEnd(connection)
            try await connection.write(Array("reply to: ".utf8) + request)
            try connection.shutdown(.write)
            return request
        }
        let client1 = try await TCPStream.connect(to: address)
        try await client1.write(Array("request".utf8))
        try client1.shutdown(.write)
        let reply = try await readToEnd(client1)
        #expect(String(decoding: reply, as: UTF8.self) == "reply to: request")
        #expect(try await value(of: server1) { client1.close() } == Array("request".utf8))
        client1.close()

        // The server half-closes; the client reads to EOF and then still sends.
        let server2 = try pool.spawn { () async throws -> [UInt8] in
            let connection = try await listener.accept()
            try await connection.write(Array("greeting".utf8))
            try connection.shutdown(.write)
            return try await readToEnd(connection)
        }
        let client2 = try await TCPStream.connect(to: address)
        let greeting = try await readToEnd(client2)
        #expect(String(decoding: greeting, as: UTF8.self) == "greeting")
        try await client2.write(Array("sent after EOF".utf8))
        try client2.shutdown(.write)
        let received = try await value(of: server2) { client2.close() }
        #expect(String(decoding: received, as: UTF8.self) == "sent after EOF")
        client2.close()

        listener.close()
        await pool.shutdown()
    }

    @Test func cancellingAPendingReadThrowsCancellationError() async throws {
        // On an IOThreadPool thread: the stream registers with that thread.
        do {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let thread = pool.threads[0]
            let (client, server, listener) = try await connectedPair()
            let reader = try thread.spawn { () async throws -> [UInt8] in try await server.read() }
            // A task spawned later on the same thread runs after the reader's first job, which ends
            // with the read suspended: the cancellation hits a pending read.
            await (try thread.spawn {}).value
            reader.cancel()
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { server.close() }
            #expect(isCancellation(outcome), "\(outcome)")

            // The stream still works, on its thread and off-pool.
            try await client.write(Array("after cancel".utf8))
            let again = try await value(of: try thread.spawn { try await readExactly(server, 12) }) { server.close() }
            #expect(again == Array("after cancel".utf8))
            try await client.write(Array("and again".utf8))
            #expect(try await readExactly(server, 9) == Array("and again".utf8))
            client.close()
            server.close()
            listener.close()
            await pool.shutdown()
        }

        // Off-pool: a plain Task (the stream registers with a thread of the default pool).
        do {
            let (client, server, listener) = try await connectedPair()
            let reader = Task { try await server.read() }
            try await waitUntilPending(server.handle)  // the cancellation hits a read that waits
            reader.cancel()
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { server.close() }
            #expect(isCancellation(outcome), "\(outcome)")

            try await client.write(Array("after cancel".utf8))
            let again = try await value(of: Task { try await readExactly(server, 12) }) { server.close() }
            #expect(again == Array("after cancel".utf8))
            client.close()
            server.close()
            listener.close()
        }
    }

    @Test func closeFailsAPendingRead() async throws {
        // On an IOThreadPool thread.
        do {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let thread = pool.threads[0]
            let (client, server, listener) = try await connectedPair()
            let reader = try thread.spawn { () async throws -> [UInt8] in try await server.read() }
            await (try thread.spawn {}).value  // the read is pending (see the cancellation test)
            await Task { server.close() }.value
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { reader.cancel() }
            #expect(ioErrno(outcome) == .badFileDescriptor, "\(outcome)")
            try await expectEveryOperationFailsWithEBADF(server)
            let later = await (try thread.spawn { () async throws -> [UInt8] in try await server.read() }).result
            #expect(ioErrno(later) == .badFileDescriptor, "\(later)")
            client.close()
            listener.close()
            await pool.shutdown()
        }

        // Off-pool: the read waits on a default-pool thread; the close comes from another task.
        do {
            let (client, server, listener) = try await connectedPair()
            let reader = Task { try await server.read() }
            try await waitUntilPending(server.handle)
            await Task { server.close() }.value
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { reader.cancel() }
            #expect(ioErrno(outcome) == .badFileDescriptor, "\(outcome)")
            try await expectEveryOperationFailsWithEBADF(server)
            client.close()
            listener.close()
        }
    }

    @Test func connectToAClosedPortFails() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        listener.close()
        do {
            let stream = try await TCPStream.connect(to: address)
            Issue.record("connect to \(address), where nothing listens, succeeded")
            stream.close()
        } catch let error as IOError {
            #expect(error.errno == .connectionRefused, "\(error)")
            #expect(error.operation.contains("\(address)"), "\(error)")
            #expect(error.operation == "connect to \(address)", "\(error)")
        }
    }

    @Test func addressesAndNoDelay() async throws {
        let (client, server, listener) = try await connectedPair()
        let listenerAddress = try listener.localAddress
        #expect(try client.remoteAddress == listenerAddress)
        #expect(try server.localAddress == listenerAddress)
        #expect(try client.localAddress == server.remoteAddress)
        #expect(try client.localAddress.host == "127.0.0.1")
        #expect(try client.localAddress.port != 0)
        #expect(try client.localAddress.port != listenerAddress.port)

        try client.setNoDelay(true)
        try server.setNoDelay(true)
        #expect(try client.handle.getOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, "getsockopt") as CInt != 0)
        #expect(try server.handle.getOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, "getsockopt") as CInt != 0)
        try client.setNoDelay(false)
        #expect(try client.handle.getOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, "getsockopt") as CInt == 0)

        // Still a working connection.
        try await client.write(Array("ping".utf8))
        #expect(try await readExactly(server, 4) == Array("ping".utf8))
        client.close()
        server.close()
        listener.close()
    }

    @Test func socketsUsedOffPoolWork() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let server = Task { () async throws -> Bool in
            let offPool = IOThread.current == nil
            let connection = try await listener.accept()
            _ = try await copy(from: connection, to: connection)
            try connection.shutdown(.write)
            connection.close()
            return offPool
        }
        let client = Task { () async throws -> (Bool, [UInt8]) in
            let offPool = IOThread.current == nil
            let stream = try await TCPStream.connect(to: address)
            try await stream.write(Array("off-pool echo".utf8))
            try stream.shutdown(.write)
            let echoed = try await readToEnd(stream)
            stream.close()
            return (offPool, echoed)
        }
        let (clientOffPool, echoed) = try await value(of: client) { listener.close() }
        #expect(String(decoding: echoed, as: UTF8.self) == "off-pool echo")
        #expect(clientOffPool)
        #expect(try await value(of: server) { listener.close() })
        listener.close()
    }

    @Test func readAndWriteConcurrentlyFromTwoTasks() async throws {
        let size = 1 << 20
        let data = pattern(count: size)
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let server = try EchoServer(pool: pool)

        // Off-pool: two plain tasks share the stream, one writing, one reading.
        do {
            let client = try await TCPStream.connect(to: server.address)
            let writer = Task {
                try await client.write(data)
                try client.shutdown(.write)
            }
            let reader = Task { try await readAndVerify(client, expected: data) }
            try await value(of: writer) { client.close() }
            let read = try await value(of: reader) { client.close() }
            #expect(read == size)
            client.close()
        }

        // On a pool thread: writer and reader are child tasks on the stream's own thread.
        do {
            let client = try await TCPStream.connect(to: server.address)
            let both = try pool.spawn { () async throws -> Int in
                async let written: Void = {
                    try await client.write(data)
                    try client.shutdown(.write)
                }()
                let read = try await readAndVerify(client, expected: data)
                try await written
                return read
            }
            #expect(try await value(of: both) { client.close() } == size)
            client.close()
        }
        await server.stop()
    }

    // MARK: Load and backpressure

    @Test func thousandConcurrentEchoConnections() async throws {
        let connections = 1_000
        // Both ends of every connection live in this process, and other tests may run meanwhile.
        guard ensureFileDescriptorLimit(atLeast: 2 * connections + 6_000) else { return }
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let server = try EchoServer(pool: pool)
        let address = server.address

        let verified = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<connections {
                group.addTask {
                    let message = distinctMessage(index, count: 100)
                    let client = try await TCPStream.connect(to: address)
                    defer { client.close() }
                    try await client.write(message)
                    return try await readExactly(client, message.count) == message
                }
            }
            var verified = 0
            for try await ok in group where ok { verified += 1 }
            return verified
        }
        #expect(verified == connections)
        await server.stop()
    }

    @Test func manyIdleConnections() async throws {
        let connections = 2_000
        guard ensureFileDescriptorLimit(atLeast: 2 * connections + 4_000) else { return }
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let (reading, readingContinuation) = AsyncStream.makeStream(of: Void.self)
        let sawEOF = Counter()

        // The accept loop keeps its handlers' tasks, so that it can wait for them and then read the
        // pool's live task count while it is the only task left.
        let acceptLoop = try pool.spawn { () async throws -> Int in
            var handlers: [Task<Void, Never>] = []
            for _ in 0..<connections {
                let connection = try await listener.accept()
                handlers.append(
                    spawn {
                        readingContinuation.yield()
                        if let bytes = try? await connection.read(), bytes.isEmpty { sawEOF.increment() }
                        connection.close()
                    })
            }
            for handler in handlers { await handler.value }
            return pool.liveTaskCount
        }

        var clients: [TCPStream] = []
        clients.reserveCapacity(connections)
        for _ in 0..<connections {
            clients.append(try await TCPStream.connect(to: address))
        }
        // Every handler is (about to be) waiting in read.
        var handlersReading = 0
        for await _ in reading {
            handlersReading += 1
            if handlersReading == connections { break }
        }
        #expect(sawEOF.count == 0, "no handler may see EOF while its client is open")
        for client in clients { client.close() }
        clients.removeAll()

        let liveAfterwards = try await value(of: acceptLoop) {
            listener.close()
            Task { await pool.shutdown() }
        }
        #expect(sawEOF.count == connections)
        #expect(liveAfterwards == 1, "only the accept loop is left")
        listener.close()
        await pool.shutdownGracefully()
        #expect(pool.liveTaskCount == 0)
    }

    @Test func multiMegabyteEchoToASlowReader() async throws {
        let size = 8 << 20
        let data = pattern(count: size)
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        // Small, fixed kernel buffers on both ends (no autotuning), so that the bytes in flight
        // are bounded: accepted sockets inherit the listener's buffer sizes.
        let bufferSize = CInt(64 << 10)
        let server = try EchoServer(pool: pool) { listener in
            try listener.handle.setOption(level: SOL_SOCKET, name: SO_RCVBUF, bufferSize, "setsockopt(SO_RCVBUF)")
            try listener.handle.setOption(level: SOL_SOCKET, name: SO_SNDBUF, bufferSize, "setsockopt(SO_SNDBUF)")
        }
        let client = try await TCPStream.connect(to: server.address)
        try client.handle.setOption(level: SOL_SOCKET, name: SO_RCVBUF, bufferSize, "setsockopt(SO_RCVBUF)")
        try client.handle.setOption(level: SOL_SOCKET, name: SO_SNDBUF, bufferSize, "setsockopt(SO_SNDBUF)")

        let readSoFar = SharedInt()
        let reader = Task { () async throws -> Int in
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
            defer { chunk.deallocate() }
            var offset = 0
            while true {
                let count = try await client.read(into: chunk)
                if count == 0 { return offset }
                guard offset + count <= size else { throw TestFailure("echo is longer than what was sent") }
                let same = data.withUnsafeBytes { memcmp($0.baseAddress! + offset, chunk.baseAddress!, count) == 0 }
                guard same else { throw TestFailure("echo differs in bytes \(offset)..<\(offset + count)") }
                offset += count
                readSoFar.set(offset)
                for _ in 0..<8 { await Task.yield() }  // a slow reader
            }
        }
        let writer = Task { () async throws -> Int in
            try await client.write(data)
            let readWhenDone = readSoFar.value
            try client.shutdown(.write)
            return readWhenDone
        }
        let readWhenWriterDone = try await value(of: writer) { client.close() }
        let total = try await value(of: reader) { client.close() }
        #expect(total == size)
        // Backpressure: when the writer's last byte was accepted, every byte not yet read sits in a
        // kernel buffer (four of about 128 KiB) or the server's copy buffer (16 KiB). If the server
        // buffered in user space, the writer would finish long before the reader.
        let inFlight = size - readWhenWriterDone
        #expect(inFlight <= 2 << 20, "\(inFlight) bytes were in flight when the writer finished")
        client.close()
        await server.stop()
    }

    // MARK: Errors

    // What Linux does when the peer resets (tcp_reset, tcp_recvmsg, sk_stream_error): the first
    // operation after the RST fails with ECONNRESET and consumes the socket error; after that a
    // write fails with EPIPE (MSG_NOSIGNAL: no SIGPIPE) and a read returns 0.
    @Test func peerResetMidEcho() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let serverSide = try pool.spawn { () async throws -> [String] in
            let connection = try await listener.accept()
            var outcomes: [String] = []
            let request = try await readExactly(connection, 4)
            try await connection.write(request)  // echo
            outcomes.append(await outcome { try await connection.read() })
            outcomes.append(await outcome { try await connection.write(Array("after reset".utf8)) })
            outcomes.append(await outcome { try await connection.write(pattern(count: 1 << 20)) })
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 3, alignment: 1)
            defer { raw.deallocate() }
            raw.copyBytes(from: "raw".utf8)
            outcomes.append(await outcome { try await connection.write(UnsafeRawBufferPointer(raw)) })
            outcomes.append(await outcome { try await connection.read() })
            connection.close()
            return outcomes
        }

        let client = try await TCPStream.connect(to: address)
        try await client.write(Array("ping".utf8))
        // Once the echo is back the server has read the bytes and waits in its next read.
        #expect(try await readExactly(client, 4) == Array("ping".utf8))
        try resetOnClose(client)
        client.close()

        let outcomes = try await value(of: serverSide) { listener.close() }
        #expect(
            outcomes == [
                "IOError ECONNRESET read",
                "IOError EPIPE write",
                "IOError EPIPE write",
                "IOError EPIPE write",
                "returned 0 bytes",
            ])
        listener.close()
        await pool.shutdown()
    }

    // After `close()`, an operation must fail with EBADF without touching the descriptor number
    // again: the kernel hands the number to the next descriptor opened anywhere in the process.
    @Test func operationsAfterCloseLeaveAReusedDescriptorNumberAlone() async throws {
        // Other tests open descriptors concurrently, so the number may go to them first: retry.
        for _ in 0..<200 {
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            let number = listener.handle.fd
            listener.close()
            let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard probe == number else {
                if probe >= 0 { Glibc.close(probe) }
                continue
            }
            let identity = descriptorIdentity(probe)
            #expect(throws: IOError(errno: .badFileDescriptor, operation: "getsockname", detail: "the socket is closed")) {
                try listener.localAddress
            }
            let after = descriptorIdentity(probe)
            #expect(
                after == identity,
                "an operation on the closed listener closed descriptor \(number) again, which by then was this test's /dev/null")
            if after == identity { Glibc.close(probe) }  // else it is gone (or someone else's now)
            return
        }
        Issue.record("the closed listener's descriptor number was never reused by this test in 200 tries")
    }

    // MARK: Readiness edges that arrive together with the last data

    // The peer's FIN arrives in the same epoll edge as its last bytes, and the read of those bytes is
    // short (fewer bytes than the buffer). The next read must return 0 (end of stream). See
    // `shortReadThenEdge` for how the single edge is arranged.
    @Test func endOfStreamArrivingWithTheLastDataIsSeen() async throws {
        let result = try await shortReadThenEdge { client in
            try await client.write(Array("hello world".utf8))
            try client.shutdown(.write)
        }
        #expect(result.data == Array("hello world".utf8))
        #expect(result.next == "returned 0 bytes")
    }

    // The same with the peer's reset: the read after the short read must throw ECONNRESET.
    @Test func resetArrivingWithTheLastDataIsSeen() async throws {
        let result = try await shortReadThenEdge { client in
            try await client.write(Array("hello world".utf8))
            try resetOnClose(client)
            client.close()
        }
        #expect(result.data == Array("hello world".utf8))
        #expect(result.next == "IOError ECONNRESET read")
    }
}

// MARK: - Helpers

/// An echo server: `spawnAll` over a listener on `pool`; each connection is copied back to itself,
/// then its write side is shut down.
private struct EchoServer {
    let pool: IOThreadPool
    let listener: TCPListener
    let address: SocketAddress

    init(pool: IOThreadPool, configure: (TCPListener) throws -> Void = { _ in }) throws {
        self.pool = pool
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        try configure(listener)
        self.listener = listener
        address = try listener.localAddress
        try pool.spawn {
            try? await pool.spawnAll(listener.connections) { connection in
                _ = try? await copy(from: connection, to: connection)
                try? connection.shutdown(.write)
                connection.close()
            }
        }
    }

    func stop() async {
        listener.close()
        await pool.shutdown()
    }
}

/// An `Int` that tasks share (an `Atomic` cannot be captured by escaping closures).
private final class SharedInt: Sendable {
    private let storage = Atomic<Int>(0)
    func set(_ newValue: Int) { storage.store(newValue, ordering: .relaxed) }
    var value: Int { storage.load(ordering: .relaxed) }
}

/// Connects a client to a fresh listener; returns both ends and the listener (used from off-pool).
private func connectedPair() async throws -> (client: TCPStream, server: TCPStream, listener: TCPListener) {
    let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
    let address = try listener.localAddress
    async let accepted = listener.accept()
    let client = try await TCPStream.connect(to: address)
    return (client, try await accepted, listener)
}

/// Reads to end of stream, checking every byte against `expected`; returns the number of bytes read.
private func readAndVerify(_ stream: TCPStream, expected: [UInt8]) async throws -> Int {
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
    defer { chunk.deallocate() }
    var offset = 0
    while true {
        let count = try await stream.read(into: chunk)
        if count == 0 { return offset }
        guard offset + count <= expected.count else { throw TestFailure("echo is longer than what was sent") }
        let same = expected.withUnsafeBytes { memcmp($0.baseAddress! + offset, chunk.baseAddress!, count) == 0 }
        guard same else { throw TestFailure("echo differs in bytes \(offset)..<\(offset + count)") }
        offset += count
    }
}

/// Bytes that do not repeat with any power-of-two period (251 is prime), so a lost, doubled or
/// reordered chunk shows.
private func pattern(count: Int) -> [UInt8] {
    patternBytes(count)  // byte i is i % 251
}

/// Makes `close()` send a RST instead of a FIN (SO_LINGER on, timeout 0).
private func resetOnClose(_ stream: TCPStream) throws {
    try stream.handle.setOption(level: SOL_SOCKET, name: SO_LINGER, linger(l_onoff: 1, l_linger: 0), "setsockopt(SO_LINGER)")
}

/// After `close()`: every operation on `stream` throws `IOError` with `EBADF`.
private func expectEveryOperationFailsWithEBADF(_ stream: TCPStream) async throws {
    #expect(await outcome { try await stream.read() } == "IOError EBADF read")
    #expect(await outcome { try await stream.write(Array("x".utf8)) } == "IOError EBADF write")
    #expect(ioErrno(Result { try stream.shutdown(.write) }) == .badFileDescriptor)
    #expect(ioErrno(Result { try stream.setNoDelay(true) }) == .badFileDescriptor)
    #expect(ioErrno(Result { try stream.localAddress }) == .badFileDescriptor)
    #expect(ioErrno(Result { try stream.remoteAddress }) == .badFileDescriptor)
}

/// Arranges for a server-side read to be short *and* for the peer's next event (FIN or RST, done by
/// `finish` on the client) to arrive in the same epoll edge as that data; returns the data and what
/// the following read did.
///
/// On a pool of one thread, the server task first reads one byte with a larger buffer: a short read,
/// which clears the read readiness. It then blocks the loop thread (its own thread, not Swift's
/// cooperative pool) in `poll(2)` until the client's data and its FIN/RST are both in the kernel, so
/// no `epoll_wait` runs between them and the loop sees them as one edge. The task reads the data
/// (another short read) and starts the next read in a child task; after a few polls of the loop the
/// child must be done. If it is not, its read waits for an edge that already came: the test closes
/// the socket (so nothing hangs) and reports it.
private func shortReadThenEdge(
    _ finish: @escaping @Sendable (TCPStream) async throws -> Void
) async throws -> (data: [UInt8], next: String) {
    let pool = try IOThreadPool(configuration: .init(threadCount: 1))
    let thread = pool.threads[0]
    let (client, server, listener) = try await connectedPair()
    let (ready, readyContinuation) = AsyncStream.makeStream(of: Void.self)
    try await client.write([0x2A])

    let serverSide = try thread.spawn { () async throws -> (data: [UInt8], next: String) in
        // A short read (1 of up to 16 bytes) clears the read readiness.
        let first = try await server.read(maxBytes: 16)
        guard first == [0x2A] else { throw TestFailure("expected the first byte, read \(first)") }
        readyContinuation.yield()
        var descriptor = pollfd(fd: server.handle.fd, events: Int16(pollReadHangUp), revents: 0)
        var rounds = 0
        while descriptor.revents & Int16(pollReadHangUp | POLLHUP | POLLERR) == 0 {
            rounds += 1
            guard rounds <= 10 else { throw TestFailure("the client's FIN/RST never arrived") }
            descriptor.revents = 0
            _ = poll(&descriptor, 1, 2_000)  // a hang guard only: returns as soon as the event is in
        }
        let data = try await server.read()
        let result = Locked<String?>(nil)
        let next = spawn {
            let text = await outcome { try await server.read() }
            result.withLock { $0 = text }
        }
        // The loop runs up to `eventInterval` jobs between two polls of epoll: yield through a few
        // polls.
        for _ in 0..<(4 * IOThread.eventInterval) { await Task.yield() }
        if result.withLock({ $0 }) == nil {
            server.close()  // ends the stuck read
            await next.value
            return (data, "still waiting after 4 polls of the loop: the edge was lost")
        }
        return (data, result.withLock { $0 }!)
    }
    for await _ in ready { break }
    try await finish(client)
    let result = try await value(of: serverSide) { server.close() }
    client.close()
    server.close()
    listener.close()
    await pool.shutdown()
    return result
}

/// The device and inode behind descriptor `fd`, or nil if it is not open.
private func descriptorIdentity(_ fd: CInt) -> [UInt64]? {
    var info = stat()
    guard fstat(fd, &info) == 0 else { return nil }
    return [UInt64(info.st_dev), UInt64(info.st_ino)]
}

/// `POLLRDHUP` (Linux, `<poll.h>` with `_GNU_SOURCE`; not imported by Glibc).
private let pollReadHangUp: CInt = 0x2000

/// Makes sure this process may open `needed` descriptors, raising the soft `RLIMIT_NOFILE` to the
/// hard limit if it is lower. Records an issue (the test fails, it is not skipped silently) and
/// returns false if the hard limit is too low.
private func ensureFileDescriptorLimit(atLeast needed: Int) -> Bool {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
        Issue.record("getrlimit(RLIMIT_NOFILE) failed: errno \(errno)")
        return false
    }
    if limit.rlim_cur >= rlim_t(needed) { return true }
    guard limit.rlim_max >= rlim_t(needed) else {
        Issue.record("this test needs \(needed) file descriptors; the hard RLIMIT_NOFILE is \(limit.rlim_max)")
        return false
    }
    var raised = limit
    raised.rlim_cur = limit.rlim_max
    guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 else {
        Issue.record("setrlimit(RLIMIT_NOFILE, \(limit.rlim_max)) failed: errno \(errno)")
        return false
    }
    return true
}

// MARK: Cancellation of spawned tasks (one handler per task: TaskIOCancellation)

extension TCPTests {
    /// A group child inherits its spawned parent's task-local cancellation scope without being the
    /// task that owns it: `cancelAll()` cancels the child only, and its pending read must still end.
    @Test func cancellingAGroupChildOfASpawnedTaskEndsItsRead() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let (client, server, listener) = try await connectedPair()
        let parent = try pool.spawn { () async -> (child: String, parentCancelled: Bool) in
            let child = await withTaskGroup(of: String.self) { group in
                group.addTask { await outcome { try await server.read() } }
                // Let the child reach its read (a child cancelled earlier would throw the same).
                for _ in 0..<10 { await Task.yield() }
                group.cancelAll()
                return await group.next()!
            }
            return (child, Task.isCancelled)
        }
        let result = await value(of: parent) { server.close() }
        #expect(result.child == "CancellationError")
        #expect(!result.parentCancelled)
        client.close()
        server.close()
        listener.close()
        await pool.shutdown()
    }

    /// A spawned task cancelled while it is not waiting: its next wait throws at once, and a read
    /// whose data is already there still completes (cancellation does not discard data).
    @Test func aSpawnedTaskCancelledBetweenWaitsStopsAtItsNextWait() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let (client, server, listener) = try await connectedPair()
        try await client.write(Array("data".utf8))
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let reader = try pool.spawn { () async -> [String] in
            for await _ in gate { break }  // ends when the task is cancelled
            let first = await outcome { try await readExactly(server, 4) }
            let second = await outcome { try await server.read() }
            return [first, second]
        }
        reader.cancel()
        open.finish()
        let outcomes = await value(of: reader) { server.close() }
        #expect(outcomes == ["returned 4 bytes", "CancellationError"])
        client.close()
        server.close()
        listener.close()
        await pool.shutdown()
    }

    /// `shutdown()` ends echo connections that are waiting in `copy` (their tasks are cancelled).
    @Test func immediateShutdownEndsConnectionsWaitingInCopy() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let server = try EchoServer(pool: pool)
        var clients: [TCPStream] = []
        for index in 0..<20 {
            let client = try await TCPStream.connect(to: server.address)
            let message = distinctMessage(index, count: 32)
            try await client.write(message)
            #expect(try await readExactly(client, 32) == message)
            clients.append(client)
        }
        // Every handler now waits in copy's read; shutdown cancels them and returns.
        await server.stop()
        #expect(pool.liveTaskCount == 0)
        for client in clients {
            // The server side was closed by its handler: the client reads end of stream.
            #expect(try await readToEnd(client).isEmpty)
            client.close()
        }
    }
}

// MARK: Large transfers

extension TCPTests {
    /// 1 GiB through `copy` between two sockets (a relay) with constant memory: the process's
    /// resident set grows by far less than what was copied.
    @Test func oneGibibyteThroughCopyInConstantMemory() async throws {
        let total = 1 << 30
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let (sender, relayIn, listenerA) = try await connectedPair()
        let (relayOut, receiver, listenerB) = try await connectedPair()
        let residentBefore = residentSetBytes()
        let relay = try pool.spawn { () async throws -> Int in
            let copied = try await copy(from: relayIn, to: relayOut)
            try relayOut.shutdown(.write)
            return copied
        }
        let sending = try pool.spawn { () async throws in
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { chunk.deallocate() }
            for index in 0..<chunk.count { chunk[index] = UInt8(truncatingIfNeeded: index % 251) }
            for _ in 0..<(total >> 20) { try await sender.write(UnsafeRawBufferPointer(chunk)) }
            try sender.shutdown(.write)
        }
        let received = try await pool.spawn { () async throws -> Int in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
            defer { buffer.deallocate() }
            var count = 0
            while true {
                let n = try await receiver.read(into: buffer)
                if n == 0 { return count }
                // Spot-check the pattern (every 4 KiB) without slowing the transfer much.
                var offset = (4096 - count % 4096) % 4096
                while offset < n {
                    if buffer[offset] != UInt8(truncatingIfNeeded: ((count + offset) % (1 << 20)) % 251) {
                        throw TestFailure("byte \(count + offset) differs")
                    }
                    offset += 4096
                }
                count += n
            }
        }.value
        try await sending.value
        #expect(try await relay.value == total)
        #expect(received == total)
        let growth = residentSetBytes() - residentBefore
        #expect(growth < 64 << 20, "resident set grew by \(growth >> 20) MiB while copying 1 GiB")
        for stream in [sender, relayIn, relayOut, receiver] { stream.close() }
        listenerA.close()
        listenerB.close()
        await pool.shutdownGracefully()
    }
}

/// The process's resident set size, from /proc/self/statm.
private func residentSetBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return 0 }
    let fields = String(decoding: buffer[..<count], as: UTF8.self).split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

// MARK: IPv6

extension TCPTests {
    /// Echo over ::1, on a pool (skipped with a recorded reason only where ::1 cannot be bound).
    @Test func echoOverIPv6Loopback() async throws {
        let listener: TCPListener
        do {
            listener = try TCPListener.bind(.loopbackIPv6(port: 0))
        } catch {
            Issue.record("::1 cannot be bound here (\(error)); IPv6 echo not tested")
            return
        }
        let address = try listener.localAddress
        #expect(address.family == .ipv6)
        #expect(address.description.hasPrefix("[::1]:"))
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let server = try pool.spawn {
            let connection = try await listener.accept()
            defer { connection.close() }
            #expect(try connection.remoteAddress.family == .ipv6)
            _ = try await copy(from: connection, to: connection)
            try connection.shutdown(.write)
        }
        let client = try await TCPStream.connect(to: SocketAddress("[::1]:\(address.port)"))
        try await client.write(Array("over IPv6".utf8))
        try client.shutdown(.write)
        #expect(try await readToEnd(client) == Array("over IPv6".utf8))
        try await value(of: server) { listener.close() }
        client.close()
        listener.close()
        await pool.shutdownGracefully()
    }
}
