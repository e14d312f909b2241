@testable import IOPool
import Testing

/// `UDPSocket.receive(into: UDPReceiveBatch)`: many datagrams per `recvmmsg`, on both pools.
/// Loopback delivers a datagram inside the sender's `sendto`, so datagrams sent before a receive
/// are all queued when it runs.
@Suite(.timeLimit(.minutes(1)))
struct UDPBatchTests {
    @Test(arguments: UDPMulticastTests.Pool.allCases)
    func aBatchTakesEveryQueuedDatagramUpToItsCapacity(pool: UDPMulticastTests.Pool) async throws {
        let problems = try await run(on: pool) { () async throws -> [String] in
            let server = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let client = try UDPSocket.bind(.loopbackIPv4(port: 0))
            defer {
                server.close()
                client.close()
            }
            let serverAddress = try server.localAddress
            let clientAddress = try client.localAddress
            for index in 0..<10 { try await client.send(Array("datagram \(index)".utf8), to: serverAddress) }
            // One datagram longer than a batch slot: stored cut short, flagged truncated.
            try await client.send([UInt8](repeating: 7, count: 100), to: serverAddress)

            let batch = UDPReceiveBatch(capacity: 4, datagramSize: 64)
            var problems: [String] = []
            var received: [String] = []
            var counts: [Int] = []
            while received.count < 11 {
                let count = try await server.receive(into: batch)
                counts.append(count)
                if batch.count != count { problems.append("batch.count \(batch.count) != returned \(count)") }
                for index in 0..<count {
                    let datagram = batch[index]
                    if datagram.sender != clientAddress { problems.append("sender \(datagram.sender), not \(clientAddress)") }
                    if received.count == 10 {
                        if !datagram.truncated || datagram.bytes.count != 64 || datagram.bytes.contains(where: { $0 != 7 }) {
                            problems.append("the long datagram: \(datagram.bytes.count) bytes, truncated \(datagram.truncated)")
                        }
                        received.append("long")
                    } else {
                        if datagram.truncated { problems.append("datagram \(received.count) flagged truncated") }
                        received.append(String(decoding: datagram.bytes, as: UTF8.self))
                    }
                }
            }
            if counts != [4, 4, 3] { problems.append("datagrams per receive: \(counts), expected [4, 4, 3]") }
            if Set(received.prefix(10)) != Set((0..<10).map { "datagram \($0)" }) { problems.append("received \(received)") }
            return problems
        }
        #expect(problems == [])
    }

    @Test(arguments: UDPMulticastTests.Pool.allCases)
    func aBatchReceiveWaitsForTheFirstDatagram(pool: UDPMulticastTests.Pool) async throws {
        let received = try await run(on: pool) { () async throws -> [String] in
            let server = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let client = try UDPSocket.bind(.loopbackIPv4(port: 0))
            defer {
                server.close()
                client.close()
            }
            let serverAddress = try server.localAddress
            let receiver = spawn { () async throws -> [String] in
                let batch = UDPReceiveBatch(capacity: 8, datagramSize: 64)
                let count = try await server.receive(into: batch)
                return (0..<count).map { String(decoding: batch[$0].bytes, as: UTF8.self) }
            }
            try await sleep(for: .milliseconds(50))  // the receive is waiting (or about to): either way it must get this
            try await client.send(Array("late".utf8), to: serverAddress)
            return try await receiver.value
        }
        #expect(received == ["late"])
    }

    @Test func cancellingAPendingBatchReceiveThrowsCancellationError() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let server = try UDPSocket.bind(.loopbackIPv4(port: 0))
        let receiver = try pool.spawn { () async throws -> Int in
            try await server.receive(into: UDPReceiveBatch())
        }
        try await Task.sleep(for: .milliseconds(50))
        receiver.cancel()
        await #expect(throws: CancellationError.self) { try await receiver.value }
        // The socket keeps working after the cancelled receive.
        let client = try UDPSocket.bind(.loopbackIPv4(port: 0))
        try await client.send(Array("after".utf8), to: try server.localAddress)
        let again = try await pool.spawn { () async throws -> Int in try await server.receive(into: UDPReceiveBatch()) }.value
        #expect(again == 1)
        server.close()
        client.close()
        await pool.shutdown()
    }

    @Test func receiveBufferSizeIsSetAndReadBack() throws {
        let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
        defer { socket.close() }
        try socket.setReceiveBufferSize(64 * 1024)
        #expect(try socket.receiveBufferSize == 128 * 1024, "Linux doubles SO_RCVBUF for its bookkeeping")
    }
}
