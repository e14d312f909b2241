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
            try await waitUntilPending(server.handle)  // the datagram arrives while the receive waits
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
        try await waitUntilPending(server.handle)
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

    // MARK: Sending

    @Test(arguments: UDPMulticastTests.Pool.allCases)
    func aSendBatchSendsEveryDatagramToItsDestination(pool: UDPMulticastTests.Pool) async throws {
        let problems = try await run(on: pool) { () async throws -> [String] in
            let first = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let second = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let sender = try UDPSocket.bind(.loopbackIPv4(port: 0))
            defer {
                for socket in [first, second, sender] { socket.close() }
            }
            let batch = UDPSendBatch(capacity: 8, datagramSize: 32)
            for index in 0..<8 {
                batch.append(Array("to \(index % 2) #\(index)".utf8), to: try (index % 2 == 0 ? first : second).localAddress)
            }
            #expect(batch.isFull)
            try await sender.send(batch)
            var problems: [String] = []
            for (name, socket) in [("first", first), ("second", second)] {
                let receive = UDPReceiveBatch(capacity: 8, datagramSize: 32)
                let count = try await socket.receive(into: receive)
                let got = Set((0..<count).map { String(decoding: receive[$0].bytes, as: UTF8.self) })
                let parity = name == "first" ? 0 : 1
                let expected = Set((0..<8).filter { $0 % 2 == parity }.map { "to \(parity) #\($0)" })
                if got != expected { problems.append("\(name) got \(got), expected \(expected)") }
            }
            // Reuse: after removeAll, a connected socket sends to its peer (no destination).
            batch.removeAll()
            try sender.connect(to: try first.localAddress)
            batch.append(Array("connected".utf8))
            try await sender.send(batch)
            let (bytes, _, _) = try await first.receive()
            if bytes != Array("connected".utf8) { problems.append("connected send: got \(bytes)") }
            return problems
        }
        #expect(problems == [])
    }

    @Test func aRefusedDatagramSaysWhichAndTheOnesBeforeItWereSent() async throws {
        let outcome = try await run(on: .io) { () async throws -> (error: String, received: Int) in
            let receiver = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let sender = try UDPSocket.bind(.loopbackIPv4(port: 0))
            defer {
                receiver.close()
                sender.close()
            }
            let batch = UDPSendBatch(capacity: 4, datagramSize: 16)
            batch.append(Array("one".utf8), to: try receiver.localAddress)
            batch.append(Array("two".utf8), to: try receiver.localAddress)
            batch.append(Array("three".utf8), to: try SocketAddress("[::1]:9"))  // IPv6 from an IPv4 socket
            var message = "no error"
            do {
                try await sender.send(batch)
            } catch let error as IOError {
                message = "\(error)"
            }
            let received = UDPReceiveBatch(capacity: 4, datagramSize: 16)
            return (message, try await receiver.receive(into: received))
        }
        #expect(outcome.error.contains("datagram 2 of 3 (5 bytes to [::1]:9); the 2 before it were sent"), "\(outcome.error)")
        #expect(outcome.received == 2)
    }
}
