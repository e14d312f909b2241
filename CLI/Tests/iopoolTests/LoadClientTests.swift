import IOPool
import Testing

@testable import iopool

@Suite(.timeLimit(.minutes(1)))
struct LoadClientTests {
    @Test func histogramKeepsEveryValueWithinItsPrecision() {
        // One #expect for all 100,000 values: an expectation per value costs seconds under TSan,
        // and this synchronous test holds a thread of the cooperative pool while it runs.
        var generator = SystemRandomNumberGenerator()
        var outOfPrecision: [UInt64] = []
        for _ in 0..<100_000 {
            let value = UInt64.random(in: 0...(1 << 40), using: &generator)
            let edge = LatencyHistogram.upperEdge(of: LatencyHistogram.index(of: value))
            if edge < value || edge - value > value / UInt64(LatencyHistogram.subBuckets) { outOfPrecision.append(value) }
        }
        #expect(outOfPrecision.isEmpty, "values whose bucket edge is below them or more than 1/64 above: \(outOfPrecision.prefix(10))")
    }

    @Test func histogramPercentiles() {
        var histogram = LatencyHistogram()
        for value in 1...100_000 { histogram.record(nanoseconds: UInt64(value)) }
        #expect(histogram.count == 100_000)
        for (percentile, expected) in [(50.0, 50_000.0), (90, 90_000), (99, 99_000), (99.9, 99_900)] {
            let value = Double(histogram.value(atPercentile: percentile))
            #expect(abs(value - expected) / expected < 0.02, "p\(percentile) = \(value)")
        }
        #expect(histogram.value(atPercentile: 100) == 100_000)
        var other = LatencyHistogram()
        other.record(nanoseconds: 1_000_000)
        histogram.merge(other)
        #expect(histogram.max == 1_000_000 && histogram.count == 100_001)
    }

    @Test func loadAgainstAnEchoServerCountsVerifiedMessages() async throws {
        let server = try TestServer(transform: { $0 })
        let options = LoadClient.Options(
            address: server.address, connections: 4, messageSize: 100, depth: 2, warmup: .milliseconds(50),
            duration: .milliseconds(200), threads: 2)
        let result = try await LoadClient(options: options).run()
        #expect(result.messages > 0)
        #expect(result.histogram.count == result.messages)
        await server.stop()
    }

    /// A server that breaks the echo contract fails the run with an `EchoFailure` that says how.
    enum BrokenServer: String, CaseIterable, Sendable {
        case corruptsABytePerRead = "came back different"
        case closesAtOnce = "closed the connection"

        var transform: (@Sendable ([UInt8]) -> [UInt8])? {
            switch self {
            case .corruptsABytePerRead:
                return { bytes in
                    var bytes = bytes
                    if !bytes.isEmpty { bytes[bytes.count / 2] ^= 0xFF }
                    return bytes
                }
            case .closesAtOnce:
                return nil
            }
        }
    }

    @Test(arguments: BrokenServer.allCases)
    func aBrokenEchoFailsTheRun(_ broken: BrokenServer) async throws {
        let server = try TestServer(transform: broken.transform)
        let options = LoadClient.Options(
            address: server.address, connections: 2, messageSize: 64, warmup: .milliseconds(50),
            duration: .milliseconds(100))
        await #expect {
            try await LoadClient(options: options).run()
        } throws: { error in
            error is LoadClient.EchoFailure && "\(error)".contains(broken.rawValue)
        }
        await server.stop()
    }
}

/// An in-process server: echoes each read through `transform`, or (nil) closes at once.
private struct TestServer {
    let pool: IOThreadPool
    let listener: TCPListener
    let address: SocketAddress

    init(transform: (@Sendable ([UInt8]) -> [UInt8])?) throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))
        self.pool = pool
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        self.listener = listener
        address = try listener.localAddress
        try pool.spawn {
            try? await pool.spawnAll(listener.connections) { connection in
                defer { connection.close() }
                guard let transform else { return }
                while let bytes = try? await connection.read(), !bytes.isEmpty {
                    guard (try? await connection.write(transform(bytes))) != nil else { return }
                }
            }
        }
    }

    func stop() async {
        listener.close()
        await pool.shutdown()
    }
}
