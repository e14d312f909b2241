import Glibc
@testable import IOPool
import SystemPackage
import Testing

/// `UnixDatagramSocket`: paths, abstract names, unbound senders, pairs, connect, truncation,
/// cancellation and close, on both pools and off-pool.
@Suite(.timeLimit(.minutes(1)))
struct UnixDatagramTests {
    /// A fresh abstract name (process id and a random number: no file, nothing to clean up).
    private func abstractName(_ label: String) throws -> UnixSocketAddress {
        try UnixSocketAddress(abstract: "iopool-dgram-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))")
    }

    @Test(arguments: NetPlace.allCases)
    func requestAndReplyOverAbstractNames(place: NetPlace) async throws {
        let serverAddress = try abstractName("server"), clientAddress = try abstractName("client")
        let server = try UnixDatagramSocket.bind(serverAddress)
        let client = try UnixDatagramSocket.bind(clientAddress)
        defer { server.close(); client.close() }
        let (request, sender, reply) = try await place.run {
            try await client.send(Array("ping".utf8), to: serverAddress)
            let (request, sender, _) = try await server.receive()
            try await server.send(Array("pong".utf8), to: sender!)
            let (reply, _, _) = try await client.receive()
            return (request, sender, reply)
        }
        #expect(request == Array("ping".utf8))
        #expect(sender == clientAddress)
        #expect(reply == Array("pong".utf8))
        #expect(try server.localAddress == serverAddress)
    }

    @Test(arguments: NetPlace.allCases)
    func aPathSocketAndAnUnboundSender(place: NetPlace) async throws {
        var template = Array("/tmp/iopool-dgram-XXXXXX".utf8CString)
        guard let directory = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw TestFailure("mkdtemp failed: errno \(errno)")
        }
        let path = "\(directory)/server.sock"
        defer { unlink(path); rmdir(directory) }
        let address = try UnixSocketAddress(path: path)
        let server = try UnixDatagramSocket.bind(address)
        let sender = try UnixDatagramSocket.unbound()
        defer { server.close(); sender.close() }
        let (bytes, from, truncated) = try await place.run {
            try await sender.send([1, 2, 3], to: address)
            return try await server.receive()
        }
        #expect(bytes == [1, 2, 3] && from == nil && !truncated)

        // The file stays after close; binding again needs removingExistingFile.
        server.close()
        #expect(describe(Result { try UnixDatagramSocket.bind(address) }.thrownError) == "IOError EADDRINUSE bind to \(path)")
        let rebound = try UnixDatagramSocket.bind(address, removingExistingFile: true)
        rebound.close()
    }

    @Test(arguments: NetPlace.allCases)
    func aPairExchangesWholeDatagramsInOrderAndEmptyOnes(place: NetPlace) async throws {
        let (a, b) = try UnixDatagramSocket.pair()
        defer { a.close(); b.close() }
        let received = try await place.run {
            for index in 0..<50 { try await a.send(distinctMessage(index, count: 100 + index)) }
            try await a.send([UInt8]())
            var received: [[UInt8]] = []
            for _ in 0..<51 { received.append(try await b.receive().bytes) }
            return received
        }
        #expect(received.dropLast() == (0..<50).map { distinctMessage($0, count: 100 + $0) }[...])
        #expect(received.last == [])
        #expect(try a.localAddress == nil && a.remoteAddress == nil)
    }

    @Test(arguments: NetPlace.allCases)
    func connectedSocketsSendWithoutAnAddress(place: NetPlace) async throws {
        let serverAddress = try abstractName("connected")
        let server = try UnixDatagramSocket.bind(serverAddress)
        let client = try UnixDatagramSocket.unbound()
        defer { server.close(); client.close() }
        try client.connect(to: serverAddress)
        #expect(try client.remoteAddress == serverAddress)
        let received = try await place.run {
            try await client.send(Array("hello".utf8))
            return try await server.receive().bytes
        }
        #expect(received == Array("hello".utf8))
    }

    /// A datagram longer than the buffer: the buffer is filled, `truncated` says so, and the next
    /// receive gets the next datagram (the rest was discarded).
    @Test(arguments: NetPlace.allCases)
    func aDatagramLargerThanTheBufferIsReportedTruncated(place: NetPlace) async throws {
        let (a, b) = try UnixDatagramSocket.pair()
        defer { a.close(); b.close() }
        let (first, second) = try await place.run {
            try await a.send(distinctMessage(1, count: 1000))
            try await a.send([9])
            return (try await b.receive(maxBytes: 10), try await b.receive(maxBytes: 10))
        }
        #expect(first.bytes == Array(distinctMessage(1, count: 1000).prefix(10)))
        #expect(first.truncated)
        #expect(second.bytes == [9] && !second.truncated)
    }

    /// Limits: a datagram larger than the send buffer, and a negative maxBytes.
    @Test func limitsExceededThrowClearErrors() async throws {
        let (a, b) = try UnixDatagramSocket.pair()
        defer { a.close(); b.close() }
        let tooLarge = [UInt8](repeating: 0, count: try a.sendBufferSize + 1)
        #expect(describe(await Result { try await a.send(tooLarge) }.thrownError) == "IOError EMSGSIZE send")
        #expect(describe(await Result { try await b.receive(maxBytes: -1) }.thrownError).hasPrefix("IOError EINVAL receive(maxBytes: -1)"))
    }

    @Test func sendingWhereNothingIsBoundFails() async throws {
        let socket = try UnixDatagramSocket.unbound()
        defer { socket.close() }
        let nowhere = try abstractName("nobody")
        #expect(describe(await Result { try await socket.send([1], to: nowhere) }.thrownError) == "IOError ECONNREFUSED send to \(nowhere)")
        #expect(describe(await Result { try await socket.send([1]) }.thrownError).hasPrefix("IOError ENOTCONN send"))
    }

    /// A peer that closed: sends on the other end of a pair fail (`ECONNREFUSED`), never hang.
    @Test func sendingToAClosedPeerFails() async throws {
        let (a, b) = try UnixDatagramSocket.pair()
        b.close()
        defer { a.close() }
        let error = await Result { try await a.send([1]) }.thrownError
        #expect(describe(error) == "IOError ECONNREFUSED send")
    }

    @Test(arguments: NetPlace.allCases)
    func cancellingAPendingReceiveThrowsCancellationErrorAndLeavesTheSocketUsable(place: NetPlace) async throws {
        let (a, b) = try UnixDatagramSocket.pair()
        defer { a.close(); b.close() }
        let (cancelled, after) = try await place.run {
            let receiving = Task { try await b.receive() }
            try await waitUntilWaiting(b)
            receiving.cancel()
            let cancelled = await receiving.result
            try await a.send([7])
            return (cancelled.map(\.bytes), try await b.receive().bytes)
        }
        #expect(isCancellation(cancelled))
        #expect(after == [7])
    }

    @Test(arguments: NetPlace.allCases)
    func closeFailsAPendingReceiveWithEBADF(place: NetPlace) async throws {
        let (a, b) = try UnixDatagramSocket.pair()
        defer { a.close() }
        let outcome = try await place.run {
            let receiving = Task { try await b.receive() }
            try await waitUntilWaiting(b)
            b.close()
            return await receiving.result.map(\.bytes)
        }
        #expect(ioErrno(outcome) == .badFileDescriptor)
    }

    @Test func adoptingADatagramSocketAndRejectingAStream() async throws {
        var fds: [CInt] = [-1, -1]
        #expect(socketpair(AF_UNIX, CInt(SOCK_DGRAM.rawValue), 0, &fds) == 0)
        let a = try UnixDatagramSocket(adopting: fds[0])
        let b = try UnixDatagramSocket(adopting: fds[1])
        defer { a.close(); b.close() }
        try await a.send([5])
        #expect(try await b.receive().bytes == [5])

        let (stream, other) = try UnixStream.pair()
        defer { stream.close(); other.close() }
        let error = try stream.withUnsafeFileDescriptor { fd in Result { () throws(IOError) in try UnixDatagramSocket(adopting: fd) } }
        #expect(describe(error.thrownError).hasPrefix("IOError errno \(EPROTOTYPE) adopt descriptor"))
    }
}

/// Waits until a receive is suspended on `socket` (so that a cancel or close meets it pending).
private func waitUntilWaiting(_ socket: UnixDatagramSocket) async throws {
    let deadline = ContinuousClock.now.advanced(by: .seconds(45))  // generous: a loaded machine
    while !(await socket.handle.hasWaiter(.read)) {
        guard ContinuousClock.now < deadline else { throw TestFailure("the receive never waited") }
        try await Task.sleep(for: .milliseconds(1))
    }
}
