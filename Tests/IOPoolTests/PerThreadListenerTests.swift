@_spi(IOPoolSupport) @testable import IOPool
import Testing

@Suite(.timeLimit(.minutes(1)))
struct PerThreadListenerTests {
    /// SO_REUSEPORT listeners, one per thread: connections arrive on every thread and are handled on
    /// the thread whose listener accepted them.
    @Test func connectionsArriveOnEveryThreadAndStayThere() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 3))
        let listeners = try pool.listenOnEveryThread(.loopbackIPv4(port: 0))
        let address = try listeners[0].localAddress
        #expect(try listeners.allSatisfy { try $0.localAddress == address })
        let handledOn = Locked<[Int: Int]>([:])
        let moved = Counter()
        let loops = try pool.acceptOnEveryThread(listeners) { connection in
            let home = IOThread.current
            defer { connection.close() }
            _ = try? await copy(from: connection, to: connection)
            try? connection.shutdown(.write)
            if IOThread.current !== home { moved.increment() }
            if let index = home?.index { handledOn.withLock { $0[index, default: 0] += 1 } }
        }
        // 90 connections: with the kernel's hash over 3 listeners, a thread with none has
        // probability 3 * (2/3)^90, about 10^-16.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<90 {
                group.addTask {
                    let client = try await TCPStream.connect(to: address)
                    defer { client.close() }
                    let message = Array("connection \(index)".utf8)
                    try await client.write(message)
                    try client.shutdown(.write)
                    var echoed: [UInt8] = []
                    while case let chunk = try await client.read(), !chunk.isEmpty { echoed += chunk }
                    #expect(echoed == message)
                }
            }
            try await group.waitForAll()
        }
        for listener in listeners { listener.close() }
        for loop in loops { _ = await loop.result }
        await pool.shutdownGracefully()
        let counts = handledOn.withLock { $0 }
        #expect(counts.values.reduce(0, +) == 90)
        #expect(counts.keys.sorted() == [0, 1, 2], "connections arrived on every thread: \(counts)")
        #expect(moved.count == 0)
    }
}
