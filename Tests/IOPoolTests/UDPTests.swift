import Glibc
@testable import IOPool
import SystemPackage
import Testing

/// UDP: the guarantees documented on `UDPSocket`.
///
/// Every socket binds 127.0.0.1 (or ::1) port 0. No assertion depends on timing, and no test relies
/// on the order of datagrams in flight (loopback may reorder under load): each test either keeps one
/// datagram in flight at a time or checks a set. The suite's time limit is only a hang guard: where
/// a test awaits something that a bug could keep pending forever, the wait is wrapped so that the
/// test's cancellation closes the socket, and the test then fails instead of hanging.
@Suite(.timeLimit(.minutes(1)))
struct UDPTests {
    // MARK: Round trips

    @Test func pingPongOnAPoolThread() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        let (client, server) = try loopbackPair()
        let serverAddress = try server.localAddress
        let clientAddress = try client.localAddress
        let rounds = 100

        let serverTask = try thread.spawn { () async throws -> (senders: Set<SocketAddress>, onThread: Bool) in
            let senders = try await echo(server, rounds: rounds)
            return (senders, IOThread.current === thread)
        }
        let clientTask = try thread.spawn { () async throws -> (problems: [String], onThread: Bool) in
            let problems = try await ping(client, server: serverAddress, rounds: rounds)
            return (problems, IOThread.current === thread)
        }
        let clientResult = try await value(of: clientTask) { closeAll(client, server) }
        let serverResult = try await value(of: serverTask) { closeAll(client, server) }
        #expect(clientResult.problems == [])
        #expect(serverResult.senders == [clientAddress], "the server must see the client's address as the sender")
        #expect(clientResult.onThread && serverResult.onThread)
        closeAll(client, server)
        await pool.shutdown()
    }

    @Test func pingPongOffPool() async throws {
        let (client, server) = try loopbackPair()
        let serverAddress = try server.localAddress
        let clientAddress = try client.localAddress
        let rounds = 100

        let serverTask = Task { () async throws -> (senders: Set<SocketAddress>, offPool: Bool) in
            let offPool = IOThread.current == nil
            return (try await echo(server, rounds: rounds), offPool)
        }
        let clientTask = Task { () async throws -> (problems: [String], offPool: Bool) in
            let offPool = IOThread.current == nil
            return (try await ping(client, server: serverAddress, rounds: rounds), offPool)
        }
        let clientResult = try await value(of: clientTask) { closeAll(client, server) }
        let serverResult = try await value(of: serverTask) { closeAll(client, server) }
        #expect(clientResult.problems == [])
        #expect(serverResult.senders == [clientAddress])
        #expect(clientResult.offPool && serverResult.offPool)
        closeAll(client, server)
    }

    @Test func connectedSendAndReceive() async throws {
        let (a, b) = try loopbackPair()
        let stranger = try UDPSocket.bind(.loopbackIPv4(port: 0))
        let aAddress = try a.localAddress
        let bAddress = try b.localAddress
        #expect(ioErrno(Result { try a.remoteAddress }) == .socketNotConnected)

        try a.connect(to: bAddress)
        try b.connect(to: aAddress)
        #expect(try a.remoteAddress == bAddress)
        #expect(try b.remoteAddress == aAddress)
        #expect(try a.localAddress == aAddress)

        // Connected sends, both overloads, both ways.
        try await b.send(Array("from b".utf8))
        let fromB = try await guarded(a) { try await a.receive() }
        #expect(fromB.bytes == Array("from b".utf8))
        #expect(fromB.sender == bAddress)
        #expect(!fromB.truncated)
        try await withScratch(Array("from a".utf8)) { try await a.send($0) }
        let fromA = try await guarded(b) { try await b.receive() }
        #expect(fromA.bytes == Array("from a".utf8))
        #expect(fromA.sender == aAddress)

        // A connected socket receives only from its peer: the kernel drops the stranger's datagram
        // (sent first), so the peer's is what arrives.
        try await stranger.send(Array("stranger".utf8), to: aAddress)
        try await b.send(Array("peer".utf8))
        let next = try await guarded(a) { try await a.receive() }
        #expect(next.bytes == Array("peer".utf8))
        #expect(next.sender == bAddress)

        // send(to:) still works on a connected socket (Linux allows another destination).
        try await a.send(Array("to the stranger".utf8), to: try stranger.localAddress)
        let atStranger = try await guarded(stranger) { try await stranger.receive() }
        #expect(atStranger.bytes == Array("to the stranger".utf8))
        #expect(atStranger.sender == aAddress)

        // Connecting again changes the peer.
        try a.connect(to: try stranger.localAddress)
        #expect(try a.remoteAddress == stranger.localAddress)
        closeAll(a, b, stranger)
    }

    @Test func unboundSocketIsBoundByItsFirstSend() async throws {
        let server = try UDPSocket.bind(.loopbackIPv4(port: 0))
        let serverAddress = try server.localAddress
        let client = try UDPSocket.unbound()
        #expect(try client.localAddress == .anyIPv4(port: 0))

        try await client.send(Array("hello".utf8), to: serverAddress)
        let request = try await guarded(server) { try await server.receive() }
        let clientAddress = try client.localAddress
        #expect(clientAddress.port != 0)
        #expect(request.sender.port == clientAddress.port)
        #expect(request.bytes == Array("hello".utf8))

        try await server.send(Array("hello yourself".utf8), to: request.sender)
        let reply = try await guarded(client) { try await client.receive() }
        #expect(reply.bytes == Array("hello yourself".utf8))
        #expect(reply.sender == serverAddress)
        closeAll(client, server)
    }

    @Test(.enabled(if: ipv6LoopbackCanBeBound(), "::1 cannot be bound here (no IPv6 loopback): nothing to test"))
    func ipv6LoopbackRoundTrip() async throws {
        let server = try UDPSocket.bind(.loopbackIPv6(port: 0))
        let serverAddress = try server.localAddress
        #expect(serverAddress.family == .ipv6)
        #expect(serverAddress.host == "::1")
        #expect(serverAddress.port != 0)

        // An explicitly bound client, off-pool, echoed by a server on a pool thread.
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let client = try UDPSocket.bind(.loopbackIPv6(port: 0))
        let clientAddress = try client.localAddress
        let serverTask = try pool.spawn { try await echo(server, rounds: 20) }
        let problems = try await guarded(client, server) { try await ping(client, server: serverAddress, rounds: 10) }
        #expect(problems == [])

        // An unbound IPv6 client, connected.
        let unbound = try UDPSocket.unbound(.ipv6)
        try unbound.connect(to: serverAddress)
        #expect(try unbound.remoteAddress == serverAddress)
        #expect(try unbound.localAddress.family == .ipv6)
        for round in 0..<10 {
            let message = distinctMessage(round, count: 40)
            try await unbound.send(message)
            let reply = try await guarded(unbound, server) { try await unbound.receive() }
            #expect(reply.bytes == message)
            #expect(reply.sender == serverAddress)
        }
        let senders = try await value(of: serverTask) { closeAll(client, server, unbound) }
        #expect(senders == [clientAddress, try unbound.localAddress])
        closeAll(client, server, unbound)
        await pool.shutdown()
    }

    // MARK: Load

    /// 1,000 distinct datagrams, received by a concurrent task, all of them, each once.
    ///
    /// Loopback UDP drops a datagram only when the receiver's buffer is full. The sender therefore
    /// sends in windows and waits for the receiver's acknowledgement of each window: the window is
    /// sized so that a whole window fits in the receive buffer many times over (a datagram of at
    /// most 231 bytes takes under 2 KiB of buffer accounting; we budget 8 KiB), so no datagram can
    /// be dropped, however slowly the receiver runs.
    @Test(arguments: [true, false])
    func thousandDatagramsToAConcurrentReceiver(receiverOnPool: Bool) async throws {
        let total = 1_000
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let (sender, receiver) = try loopbackPair()
        let receiverAddress = try receiver.localAddress
        try receiver.handle.setOption(level: SOL_SOCKET, name: SO_RCVBUF, CInt(1 << 20), "setsockopt(SO_RCVBUF)")
        let receiveBuffer: CInt = try receiver.handle.getOption(level: SOL_SOCKET, name: SO_RCVBUF, "getsockopt(SO_RCVBUF)")
        let window = max(1, min(64, Int(receiveBuffer) / 8192))

        let receive = { @Sendable () async throws -> (received: Int, problems: [String]) in
            var seen = [Bool](repeating: false, count: total)
            var received = 0
            var problems: [String] = []
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 1)
            defer { buffer.deallocate() }
            while received < total {
                let (count, from, truncated) = try await receiver.receive(into: buffer)
                let bytes = Array(buffer[..<count])
                let index = count >= 4 ? Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian) : -1
                if truncated || index < 0 || index >= total || bytes != datagram(index) {
                    problems.append("datagram \(received) (\(count) bytes) is not one that was sent")
                } else if seen[index] {
                    problems.append("datagram \(index) arrived twice")
                } else {
                    seen[index] = true
                }
                received += 1
                if received % window == 0 || received == total {
                    try await receiver.send(withUnsafeBytes(of: UInt32(received).littleEndian) { Array($0) }, to: from)
                }
            }
            return (received, problems)
        }
        let send = { @Sendable () async throws -> [String] in
            var problems: [String] = []
            var sent = 0
            while sent < total {
                let end = min(sent + window, total)
                for index in sent..<end {
                    try await sender.send(datagram(index), to: receiverAddress)
                }
                sent = end
                let ack = try await sender.receive()
                let acknowledged = ack.bytes.count == 4 ? Int(ack.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian) : -1
                if acknowledged != sent { problems.append("after \(sent) datagrams the receiver acknowledged \(acknowledged)") }
            }
            return problems
        }

        let receiverTask = receiverOnPool ? try pool.spawn(receive) : Task(operation: receive)
        let senderTask = receiverOnPool ? Task(operation: send) : try pool.spawn(send)
        let senderProblems = try await value(of: senderTask) { closeAll(sender, receiver) }
        let (received, receiverProblems) = try await value(of: receiverTask) { closeAll(sender, receiver) }
        #expect(received == total)
        #expect(receiverProblems == [])
        #expect(senderProblems == [])
        closeAll(sender, receiver)
        await pool.shutdown()
    }

    // MARK: Cancellation and close

    @Test func cancellingAPendingReceiveThrowsCancellationError() async throws {
        // On an IOThreadPool thread: the socket registers with that thread.
        do {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let thread = pool.threads[0]
            let (client, server) = try loopbackPair()
            let serverAddress = try server.localAddress
            let receiver = try thread.spawn { () async throws -> [UInt8] in try await server.receive().bytes }
            // A task spawned later on the same thread runs after the receiver's first job, which ends
            // with the receive suspended: the cancellation hits a pending receive.
            await (try thread.spawn {}).value
            receiver.cancel()
            let outcome = await withTaskCancellationHandler { await receiver.result } onCancel: { server.close() }
            #expect(isCancellation(outcome), "\(outcome)")

            // The socket still works, on its thread and off-pool.
            try await client.send(Array("after cancel".utf8), to: serverAddress)
            let again = try await value(of: try thread.spawn { try await server.receive().bytes }) { server.close() }
            #expect(again == Array("after cancel".utf8))
            try await client.send(Array("and again".utf8), to: serverAddress)
            #expect(try await guarded(server) { try await server.receive().bytes } == Array("and again".utf8))
            closeAll(client, server)
            await pool.shutdown()
        }

        // Off-pool: a plain Task (the socket registers with a thread of the default pool).
        do {
            let (client, server) = try loopbackPair()
            let serverAddress = try server.localAddress
            let receiver = Task { try await server.receive().bytes }
            try await waitUntilPending(server.handle)  // the cancellation hits a receive that waits
            receiver.cancel()
            let outcome = await withTaskCancellationHandler { await receiver.result } onCancel: { server.close() }
            #expect(isCancellation(outcome), "\(outcome)")

            try await client.send(Array("after cancel".utf8), to: serverAddress)
            let again = try await value(of: Task { try await server.receive().bytes }) { server.close() }
            #expect(again == Array("after cancel".utf8))
            closeAll(client, server)
        }
    }

    @Test func closeFailsAPendingReceive() async throws {
        // On an IOThreadPool thread.
        do {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let thread = pool.threads[0]
            let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let receiver = try thread.spawn { () async throws -> [UInt8] in try await socket.receive().bytes }
            await (try thread.spawn {}).value  // the receive is pending (see the cancellation test)
            await Task { socket.close() }.value
            let outcome = await withTaskCancellationHandler { await receiver.result } onCancel: { receiver.cancel() }
            #expect(ioErrno(outcome) == .badFileDescriptor, "\(outcome)")
            try await expectEveryOperationFailsWithEBADF(socket)
            let later = await (try thread.spawn { () async throws -> [UInt8] in try await socket.receive().bytes }).result
            #expect(ioErrno(later) == .badFileDescriptor, "\(later)")
            await pool.shutdown()
        }

        // Off-pool: the receive waits on a default-pool thread; the close comes from another task.
        do {
            let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let receiver = Task { try await socket.receive().bytes }
            try await waitUntilPending(socket.handle)
            await Task { socket.close() }.value
            let outcome = await withTaskCancellationHandler { await receiver.result } onCancel: { receiver.cancel() }
            #expect(ioErrno(outcome) == .badFileDescriptor, "\(outcome)")
            try await expectEveryOperationFailsWithEBADF(socket)
        }
    }

    // MARK: Errors

    /// A datagram to a port where nothing listens draws an ICMP port unreachable; on a connected
    /// socket the kernel reports it to the next operation.
    @Test func connectedSocketToAClosedPortGetsConnectionRefused() async throws {
        let closedAddress = try closedPort()
        let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
        try socket.connect(to: closedAddress)

        try await socket.send(Array("anyone there?".utf8))
        let received = await outcome { try await guarded(socket) { try await socket.receive() } }
        #expect(received == "IOError ECONNREFUSED receive", "\(received)")

        // The error was reported once (this send succeeds); the next refused datagram is reported
        // again.
        try await socket.send(Array("still nobody?".utf8))
        do {
            _ = try await guarded(socket) { try await socket.receive() }
            Issue.record("a receive after the second refused datagram returned a datagram")
        } catch let error as IOError {
            #expect(error.errno == .connectionRefused, "\(error)")
            #expect(error.operation == "receive", "\(error)")
            #expect(error.detail?.contains("ICMP port unreachable") == true, "\(error)")
        }
        socket.close()
    }

    /// After an ICMP error has been reported through the socket's registration (`EPOLLERR` while a
    /// receive waits), the socket keeps working: a later receive waits without keeping its loop busy
    /// and gets the next datagram (datagram registrations never make readiness sticky: Registration).
    @Test func aPendingReceiveAfterConnectionRefusedLeavesItsLoopFree() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        let thread = pool.threads[0]
        let closedAddress = try closedPort()
        let (peer, socket) = try loopbackPair()
        let socketAddress = try socket.localAddress
        try socket.connect(to: closedAddress)

        // The receive waits on the thread; the refused datagram's ICMP error wakes it.
        let refused = try thread.spawn { await outcome { try await socket.receive() } }
        await (try thread.spawn {}).value  // the receive is pending
        try await socket.send(Array("anyone there?".utf8))
        let first = await value(of: refused) { socket.close() }
        #expect(first == "IOError ECONNREFUSED receive", "\(first)")

        // Now a receive that must wait. While it does, another task on the same thread must run.
        try socket.connect(to: try peer.localAddress)
        let waiting = try thread.spawn { await outcome { try await socket.receive() } }
        let marker = try thread.spawn { IOThread.current === thread }
        let markerRan = await value(of: marker) { socket.close() }
        #expect(markerRan)
        try await peer.send(Array("still works".utf8), to: socketAddress)
        let second = await value(of: waiting) { socket.close() }
        #expect(second == "received 11 bytes from \(try peer.localAddress)", "\(second)")

        // Off-pool too (the receive tries its syscall here and waits through the socket's thread).
        let offPool = Task { await outcome { try await socket.receive() } }
        await (try thread.spawn {}).value
        try await peer.send(Array("off-pool".utf8), to: socketAddress)
        let third = await value(of: offPool) { socket.close() }
        #expect(third == "received 8 bytes from \(try peer.localAddress)", "\(third)")

        // Cancellation and close still end a pending receive on such a socket.
        let cancelled = try thread.spawn { await outcome { try await socket.receive() } }
        await (try thread.spawn {}).value
        cancelled.cancel()
        #expect(await value(of: cancelled) { socket.close() } == "CancellationError")
        let closed = try thread.spawn { await outcome { try await socket.receive() } }
        await (try thread.spawn {}).value
        await Task { socket.close() }.value
        #expect(await value(of: closed) { socket.close() } == "IOError EBADF receive")
        closeAll(peer, socket)
        await pool.shutdown()
    }

    @Test func sendErrorsAreIOErrors() async throws {
        let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
        let target = try UDPSocket.bind(.loopbackIPv4(port: 0))
        let targetAddress = try target.localAddress

        // Larger than an IPv4 datagram can be (65,535 - 20 - 8 = 65,507 bytes of payload).
        let tooLarge = await outcome { try await socket.send([UInt8](repeating: 1, count: 65_508), to: targetAddress) }
        #expect(tooLarge == "IOError EMSGSIZE send to \(targetAddress)")
        // The largest datagram goes through whole (loopback's MTU is 65,536).
        try await socket.send([UInt8](repeating: 2, count: 65_507), to: targetAddress)
        let largest = try await guarded(target) { try await target.receive() }
        #expect(largest.bytes == [UInt8](repeating: 2, count: 65_507))
        #expect(!largest.truncated)

        let wrongFamily = await outcome { try await socket.send(Array("x".utf8), to: .loopbackIPv6(port: 9)) }
        #expect(wrongFamily == "IOError EAFNOSUPPORT send to [::1]:9")
        let notConnected = await outcome { try await socket.send(Array("x".utf8)) }
        #expect(notConnected == "IOError EDESTADDRREQ send")
        closeAll(socket, target)
    }

    // MARK: Datagram semantics

    @Test func aDatagramLongerThanTheBufferIsTruncated() async throws {
        let (a, b) = try loopbackPair()
        let aAddress = try a.localAddress
        let bAddress = try b.localAddress
        let long = distinctMessage(7, count: 100)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 1)
        defer { buffer.deallocate() }

        // One datagram in flight at a time, so nothing depends on delivery order.
        try await a.send(long, to: bAddress)
        let first = try await guarded(b) { try await b.receive(into: buffer) }
        #expect(first.count == 10)
        #expect(first.truncated)
        #expect(first.sender == aAddress)
        #expect(Array(buffer) == Array(long[..<10]))

        // The rest of the truncated datagram is gone: the next receive gets the next datagram.
        try await a.send(Array("next".utf8), to: bAddress)
        let second = try await guarded(b) { try await b.receive(into: buffer) }
        #expect(second.count == 4)
        #expect(!second.truncated)
        #expect(Array(buffer[..<4]) == Array("next".utf8))

        // A datagram that exactly fills the buffer is not truncated.
        try await a.send(Array(long[..<10]), to: bAddress)
        let exact = try await guarded(b) { try await b.receive(into: buffer) }
        #expect(exact.count == 10)
        #expect(!exact.truncated)

        // receive(maxBytes:) truncates the same way.
        try await a.send(long, to: bAddress)
        let capped = try await guarded(b) { try await b.receive(maxBytes: 30) }
        #expect(capped.bytes == Array(long[..<30]))
        #expect(capped.truncated)

        // An empty datagram is a datagram (there is no end of stream).
        try await a.send([UInt8](), to: bAddress)
        let empty = try await guarded(b) { try await b.receive(into: buffer) }
        #expect(empty.count == 0)
        #expect(!empty.truncated)
        #expect(empty.sender == aAddress)
        closeAll(a, b)
    }

    @Test func everySendOverloadSendsOneDatagram() async throws {
        let (a, b) = try loopbackPair()
        let bAddress = try b.localAddress
        let message = distinctMessage(3, count: 21)
        // Contiguous collections, a non-contiguous one, and a raw buffer; to an address and connected.
        try await a.send(message, to: bAddress)
        try await expectReceived(b, message)
        try await a.send(message[2...], to: bAddress)
        try await expectReceived(b, Array(message[2...]))
        try await a.send(repeatElement(UInt8(9), count: 5), to: bAddress)
        try await expectReceived(b, [9, 9, 9, 9, 9])
        try await withScratch(message) { try await a.send($0, to: bAddress) }
        try await expectReceived(b, message)
        try a.connect(to: bAddress)
        try await a.send("text".utf8)
        try await expectReceived(b, Array("text".utf8))
        try await a.send(repeatElement(UInt8(4), count: 3))
        try await expectReceived(b, [4, 4, 4])
        try await withScratch(message) { try await a.send($0) }
        try await expectReceived(b, message)
        closeAll(a, b)
    }

    // MARK: Options

    @Test func setBroadcastSetsTheOption() async throws {
        let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
        try socket.setBroadcast(true)
        #expect(try socket.handle.getOption(level: SOL_SOCKET, name: SO_BROADCAST, "getsockopt") as CInt != 0)
        try socket.setBroadcast(false)
        #expect(try socket.handle.getOption(level: SOL_SOCKET, name: SO_BROADCAST, "getsockopt") as CInt == 0)
        socket.close()
    }

    @Test func reusePortAndReuseAddressLetSocketsShareAPort() async throws {
        let first = try UDPSocket.bind(.loopbackIPv4(port: 0), reusePort: true)
        let address = try first.localAddress
        let second = try UDPSocket.bind(address, reusePort: true)
        #expect(try second.localAddress == address)
        #expect(throws: IOError(errno: .addressInUse, operation: "bind to \(address)")) {
            try UDPSocket.bind(address)
        }

        let third = try UDPSocket.bind(.loopbackIPv4(port: 0), reuseAddress: true)
        let otherAddress = try third.localAddress
        let fourth = try UDPSocket.bind(otherAddress, reuseAddress: true)
        #expect(try fourth.localAddress == otherAddress)
        #expect(throws: IOError(errno: .addressInUse, operation: "bind to \(otherAddress)")) {
            try UDPSocket.bind(otherAddress)
        }
        closeAll(first, second, third, fourth)
    }
}

// MARK: - Helpers

/// Two sockets bound to 127.0.0.1, each on a free port.
private func loopbackPair() throws -> (UDPSocket, UDPSocket) {
    (try UDPSocket.bind(.loopbackIPv4(port: 0)), try UDPSocket.bind(.loopbackIPv4(port: 0)))
}

private func closeAll(_ sockets: UDPSocket...) {
    for socket in sockets { socket.close() }
}

/// An address where nothing listens: a socket's port, closed again. (Another process could take
/// the port in between; the kernel hands out ports in a rotating order, so it is not reused soon.)
private func closedPort() throws -> SocketAddress {
    let socket = try UDPSocket.bind(.loopbackIPv4(port: 0))
    let address = try socket.localAddress
    socket.close()
    return address
}

/// Whether a UDP socket can bind ::1 (false where IPv6 is disabled).
private func ipv6LoopbackCanBeBound() -> Bool {
    guard let socket = try? UDPSocket.bind(.loopbackIPv6(port: 0)) else { return false }
    socket.close()
    return true
}

/// Receives `rounds` datagrams and sends each back to its sender; returns the senders seen.
private func echo(_ socket: UDPSocket, rounds: Int) async throws -> Set<SocketAddress> {
    var senders: Set<SocketAddress> = []
    for _ in 0..<rounds {
        let (bytes, sender, truncated) = try await socket.receive()
        if truncated { throw TestFailure("a datagram of the ping-pong was truncated") }
        try await socket.send(bytes, to: sender)
        senders.insert(sender)
    }
    return senders
}

/// Sends `rounds` distinct datagrams to `server`, one at a time, and checks each echo; returns the
/// problems seen. Alternates the send and receive overloads.
private func ping(_ socket: UDPSocket, server: SocketAddress, rounds: Int) async throws -> [String] {
    var problems: [String] = []
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 1)
    defer { buffer.deallocate() }
    for round in 0..<rounds {
        let message = distinctMessage(round, count: 8 + round % 64)
        if round.isMultiple(of: 2) {
            try await socket.send(message, to: server)
        } else {
            try await withScratch(message) { try await socket.send($0, to: server) }
        }
        let echoed: [UInt8]
        let sender: SocketAddress
        let truncated: Bool
        if round.isMultiple(of: 3) {
            (echoed, sender, truncated) = try await socket.receive()
        } else {
            let count: Int
            (count, sender, truncated) = try await socket.receive(into: buffer)
            echoed = Array(buffer[..<count])
        }
        if echoed != message { problems.append("round \(round): sent \(message.count) bytes, got back \(echoed.count) different ones") }
        if sender != server { problems.append("round \(round): the echo came from \(sender), not \(server)") }
        if truncated { problems.append("round \(round): the echo was truncated") }
    }
    return problems
}

/// Copies `bytes` to a temporary raw buffer for the duration of `body` (which may suspend).
private func withScratch(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) async throws -> Void) async throws {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { scratch.deallocate() }
    scratch.copyBytes(from: bytes)
    try await body(UnsafeRawBufferPointer(scratch))
}

private func expectReceived(_ socket: UDPSocket, _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation)
    async throws
{
    let received = try await guarded(socket) { try await socket.receive() }
    #expect(received.bytes == expected, sourceLocation: sourceLocation)
    #expect(!received.truncated, sourceLocation: sourceLocation)
}

/// The datagram with `index` of the load test: 32 to 231 bytes, distinct for every index.
private func datagram(_ index: Int) -> [UInt8] {
    distinctMessage(index, count: 32 + index % 200)
}

/// Runs `operation`; if the test is cancelled meanwhile (its time limit), closes `sockets`, which
/// ends an operation stuck on a bug.
private func guarded<Success>(
    _ sockets: UDPSocket..., operation: () async throws -> Success
) async throws -> Success {
    try await withTaskCancellationHandler {
        try await operation()
    } onCancel: { [sockets] in
        for socket in sockets { socket.close() }
    }
}

/// A short text for a receive's outcome: "received N bytes from ADDRESS", or the error.
private func outcome(
    _ operation: () async throws -> (bytes: [UInt8], sender: SocketAddress, truncated: Bool)
) async -> String {
    do {
        let (bytes, sender, _) = try await operation()
        return "received \(bytes.count) bytes from \(sender)"
    } catch {
        return describe(error)
    }
}

/// After `close()`: every operation on `socket` throws `IOError` with `EBADF`.
private func expectEveryOperationFailsWithEBADF(_ socket: UDPSocket) async throws {
    let anywhere = SocketAddress.loopbackIPv4(port: 9)
    #expect(await outcome { try await socket.receive() } == "IOError EBADF receive")
    #expect(await outcome { try await socket.send(Array("x".utf8), to: anywhere) } == "IOError EBADF send")
    #expect(await outcome { try await socket.send(Array("x".utf8)) } == "IOError EBADF send")
    #expect(ioErrno(Result { try socket.connect(to: anywhere) }) == .badFileDescriptor)
    #expect(ioErrno(Result { try socket.setBroadcast(true) }) == .badFileDescriptor)
    #expect(ioErrno(Result { try socket.localAddress }) == .badFileDescriptor)
    #expect(ioErrno(Result { try socket.remoteAddress }) == .badFileDescriptor)
}
