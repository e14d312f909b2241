import Glibc
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
