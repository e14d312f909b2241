import IOPool
import Synchronization

/// `iopool load`: C connections, each with K messages of M bytes in flight (K = 1: ping-pong),
/// every echoed byte verified, round-trip latency recorded after the warm-up.
struct LoadClient {
    struct Options: Sendable {
        var address: SocketAddress
        var connections = 16
        var messageSize = 64
        var depth = 1
        var warmup: Duration = .seconds(1)
        var duration: Duration = .seconds(5)
        var threads = 1
    }

    struct Result: Sendable {
        var messages: UInt64
        var seconds: Double
        var histogram: LatencyHistogram
        var messagesPerSecond: Double { Double(messages) / seconds }
    }

    /// A run that must fail with exit status 2: the server broke the echo contract.
    struct EchoFailure: Error, CustomStringConvertible {
        let description: String
    }

    let options: Options

    /// Runs the load.
    func run() async throws -> Result {
        precondition(options.connections > 0 && options.messageSize > 0 && options.depth > 0)
        let pool = try IOThreadPool(configuration: .init(threadCount: options.threads, threadNamePrefix: "load-"))
        let phase = Phase()
        var connections: [Task<LatencyHistogram, any Error>] = []
        for index in 0..<options.connections {
            let options = options
            connections.append(try pool.spawn { try await Self.drive(connection: index, options, phase) })
        }
        try await sleep(for: options.warmup)
        let start = IOClock.Instant.now
        phase.set(.measuring)
        try await sleep(for: options.duration)
        phase.set(.stopping)
        let end = IOClock.Instant.now
        var histogram = LatencyHistogram()
        var failure: (any Error)?
        for connection in connections {
            switch await connection.result {
            case .success(let partial): histogram.merge(partial)
            case .failure(let error): failure = failure ?? error
            }
        }
        await pool.shutdown()
        if let failure { throw failure }
        let elapsed = start.duration(to: end)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(messages: histogram.count, seconds: seconds, histogram: histogram)
    }

    /// One connection: keeps `depth` messages in flight, checks every echoed byte, records latency
    /// while `phase` says measuring, and stops (after the messages in flight) when it says stopping.
    private static func drive(connection index: Int, _ options: Options, _ phase: Phase) async throws -> LatencyHistogram {
        let stream: TCPStream
        do {
            stream = try await TCPStream.connect(to: options.address)
        } catch {
            throw EchoFailure(description: "connection \(index): connect failed: \(error)")
        }
        defer { stream.close() }
        try stream.setNoDelay(true)
        let size = options.messageSize
        let outgoing = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        let incoming = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer {
            outgoing.deallocate()
            incoming.deallocate()
        }
        var histogram = LatencyHistogram()
        var sentAt: [UInt64] = []  // send times of the messages in flight, oldest first
        sentAt.reserveCapacity(options.depth)
        var sequence: UInt64 = 0  // messages sent
        var received: UInt64 = 0  // messages echoed and verified

        func send() async throws {
            fill(outgoing, connection: index, sequence: sequence)
            sentAt.append(IOClock.Instant.now.nanoseconds)
            sequence += 1
            try await stream.write(UnsafeRawBufferPointer(outgoing))
        }

        do {
            return try await exchange()
        } catch let error as IOError where [.connectionReset, .brokenPipe].contains(error.errno) {
            throw EchoFailure(description: "connection \(index): the server closed the connection after \(received) messages (\(error))")
        }

        func exchange() async throws -> LatencyHistogram {
            for _ in 0..<options.depth { try await send() }
            while true {
                var filled = 0
                while filled < size {
                    let count = try await stream.read(into: UnsafeMutableRawBufferPointer(rebasing: incoming[filled...]))
                    if count == 0 {
                        throw EchoFailure(
                            description: "connection \(index): the server closed the connection after \(received) messages")
                    }
                    filled += count
                }
                fill(outgoing, connection: index, sequence: received)
                if !incoming.elementsEqual(outgoing) {
                    throw EchoFailure(description: "connection \(index): message \(received) came back different")
                }
                let latency = IOClock.Instant.now.nanoseconds &- sentAt.removeFirst()
                received += 1
                let current = phase.current
                if current == .measuring { histogram.record(nanoseconds: latency) }
                if current == .stopping {
                    if sentAt.isEmpty { return histogram }
                } else {
                    try await send()
                }
            }
        }
    }

    /// Message bytes that differ for every (connection, sequence), so a stale or misrouted byte shows.
    private static func fill(_ buffer: UnsafeMutableRawBufferPointer, connection: Int, sequence: UInt64) {
        var state = UInt64(truncatingIfNeeded: connection) &* 0x9E37_79B9_7F4A_7C15 ^ sequence &* 0xBF58_476D_1CE4_E5B9
        for index in 0..<buffer.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            buffer[index] = UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    /// Warm-up, measuring, stopping: read by every connection after each echo.
    final class Phase: Sendable {
        enum Value: Int { case warmup = 0, measuring = 1, stopping = 2 }
        private let value = Atomic<Int>(Value.warmup.rawValue)
        func set(_ newValue: Value) { value.store(newValue.rawValue, ordering: .relaxed) }
        var current: Value { Value(rawValue: value.load(ordering: .relaxed))! }
    }
}
