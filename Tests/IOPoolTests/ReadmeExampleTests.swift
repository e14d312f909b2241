import IOPool
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
