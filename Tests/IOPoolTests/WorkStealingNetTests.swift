import Glibc
@testable import IOPool
import Synchronization
import SystemPackage
import Testing

/// The net types on a WorkStealingPool, whose sockets register with the pool's shared driver: the
/// same correctness bar as on IOThreadPool (half-close, concurrency, resets, backpressure,
/// cancellation, close and shutdown under pending operations).
@Suite(.timeLimit(.minutes(2))) struct WorkStealingNetTests {
    /// An echo server on the pool: one task per connection.
    private func startEcho(on pool: WorkStealingPool) throws -> (listener: TCPListener, address: SocketAddress) {
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        try pool.spawn {
            for try await connection in listener.connections {
                try pool.spawn {
                    defer { connection.close() }
                    _ = try? await copy(from: connection, to: connection)
                    try? connection.shutdown(.write)
                }
            }
        }
        return (listener, address)
    }

    @Test func fiveHundredConcurrentEchoConnections() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let (listener, address) = try startEcho(on: pool)
        let clients = try pool.spawn { () async throws -> Int in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<500 {
                    group.addTask {
                        let stream = try await TCPStream.connect(to: address)
                        defer { stream.close() }
                        let message = distinctMessage(index, count: 1_000)
                        try await stream.write(message)
                        try stream.shutdown(.write)
                        return try await readToEnd(stream) == message
                    }
                }
                var good = 0
                for try await same in group where same { good += 1 }
                return good
            }
        }
        #expect(try await value(of: clients) { listener.close() } == 500)
        listener.close()
        await pool.shutdown()
    }

    /// 8 MiB to a reader that reads slowly: the writer suspends (bounded buffering) and every byte
    /// arrives in order; both sides half-close.
    @Test func backpressureAndHalfClose() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let (listener, address) = try startEcho(on: pool)
        let size = 8 << 20
        let data = patternBytes(size)
        let result = try pool.spawn { () async throws -> Bool in
            let stream = try await TCPStream.connect(to: address)
            defer { stream.close() }
            async let written: Void = {
                try await stream.write(data)
                try stream.shutdown(.write)
            }()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
            defer { buffer.deallocate() }
            var received: [UInt8] = []
            received.reserveCapacity(size)
            while true {
                let count = try await stream.read(into: buffer)
                if count == 0 { break }
                received += buffer[..<count]
                if received.count % (1 << 20) < 4096 { try await sleep(for: .milliseconds(1)) }
            }
            try await written
            return received == data
        }
        #expect(try await value(of: result) { listener.close() })
        listener.close()
        await pool.shutdown()
    }

    @Test func peerResetSurfacesAsECONNRESET() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let server = try pool.spawn { () async throws -> String in
            let connection = try await listener.accept()
            defer { connection.close() }
            return await outcome { _ = try await readToEnd(connection) }
        }
        let client = try await TCPStream.connect(to: address)
        try client.handle.setOption(level: SOL_SOCKET, name: SO_LINGER, linger(l_onoff: 1, l_linger: 0), "setsockopt(SO_LINGER)")
        try await client.write(Array("bye".utf8))
        client.close()  // RST
        #expect(try await value(of: server) { listener.close() } == "IOError ECONNRESET read")
        listener.close()
        await pool.shutdownGracefully()
    }

    /// A pending read is cancelled exactly once, whether the reader is a spawned task (one
    /// cancellation scope per task) or a child task (a handler per wait).
    @Test func cancellingAPendingReadOnThePool() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let client = try await TCPStream.connect(to: address)
        let server = try await listener.accept()
        let spawned = try pool.spawn { await outcome { _ = try await readToEnd(server) } }
        try await waitUntilPending(server.handle)
        spawned.cancel()
        #expect(await spawned.value == "CancellationError")

        let child = try pool.spawn { () async -> String in
            async let read = outcome { _ = try await readToEnd(server) }
            return await read
        }
        try await waitUntilPending(server.handle)
        child.cancel()
        #expect(await child.value == "CancellationError")
        // The socket still works after both cancellations.
        try await client.write(Array("x".utf8))
        client.close()
        let rest = try pool.spawn { try await readToEnd(server) }
        #expect(try await rest.value == Array("x".utf8))
        server.close()
        listener.close()
        await pool.shutdownGracefully()
    }

    @Test func closeDuringAPendingRead() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let client = try await TCPStream.connect(to: address)
        let server = try await listener.accept()
        let reader = try pool.spawn { await outcome { _ = try await readToEnd(server) } }
        try await waitUntilPending(server.handle)
        server.close()
        #expect(await reader.value == "IOError EBADF read")
        client.close()
        listener.close()
        await pool.shutdownGracefully()
    }

    /// A read waiting on the pool's driver from outside the pool fails with ECANCELED when the pool
    /// shuts down, instead of hanging.
    @Test func shutdownFailsWaitsOnTheDriver() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 1))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let address = try listener.localAddress
        let client = try await TCPStream.connect(to: address)
        let server = try await listener.accept()
        // Registered with the pool's driver by its first operation, made on the pool.
        let first = try pool.spawn { await outcome { try await server.read() } }
        try await waitUntilPending(server.handle)
        first.cancel()
        #expect(await first.value == "CancellationError")
        let reader = Task { await outcome { _ = try await readToEnd(server) } }
        try await waitUntilPending(server.handle)
        await pool.shutdownGracefully()
        #expect(await reader.value == "IOError ECANCELED read")
        client.close()
        server.close()
        listener.close()
    }

    @Test func udpAndUnixSocketsOnThePool() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let result = try pool.spawn { () async throws -> [String] in
            let server = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let client = try UDPSocket.unbound()
            defer { server.close(); client.close() }
            let serverAddress = try server.localAddress
            async let echoed: [UInt8] = {
                let (bytes, sender, _) = try await server.receive()
                try await server.send(bytes, to: sender)
                return bytes
            }()
            try await client.send(Array("datagram".utf8), to: serverAddress)
            let (reply, _, _) = try await client.receive()
            _ = try await echoed

            let (left, right) = try UnixStream.pair()
            defer { left.close(); right.close() }
            try await left.write(Array("unix".utf8))
            try left.shutdown(.write)
            let unix = try await readToEnd(right)
            return [String(decoding: reply, as: UTF8.self), String(decoding: unix, as: UTF8.self)]
        }
        #expect(try await result.value == ["datagram", "unix"])
        await pool.shutdownGracefully()
    }
}
