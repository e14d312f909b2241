import Foundation
import IOPool
import SystemPackage
import Testing

/// Misuse says what was wrong, in release builds too: a bad argument to a throwing call throws
/// `IOError` with `EINVAL` naming the value and the rule; a misuse of a non-throwing call traps
/// with its message on standard error (through `fatalError`, whose message survives `-O`, where a
/// `precondition`'s does not). CI runs this suite in a release build as well (see `.ci/run`).
@Suite(.timeLimit(.minutes(1)))
struct MisuseTests {
    @Test func badArgumentsToThrowingCallsThrowEINVALNamingTheRule() async throws {
        let (a, b) = try UnixStream.pair()
        defer {
            a.close()
            b.close()
        }
        try expectInvalidArgument(await Result { try await a.read(maxBytes: 0) }, mentioning: "maxBytes must be at least 1")
        try expectInvalidArgument(await Result { try await a.read(maxBytes: -5) }, mentioning: "read(maxBytes: -5)")
        try expectInvalidArgument(
            await Result { try await a.read(into: UnsafeMutableRawBufferPointer(start: nil, count: 0)) },
            mentioning: "the buffer is empty")
        try expectInvalidArgument(await Result { try await copy(from: a, to: b, bufferSize: 0) }, mentioning: "copy(bufferSize: 0)")

        let udp = try UDPSocket.bind(.loopbackIPv4(port: 0))
        defer { udp.close() }
        try expectInvalidArgument(await Result { try await udp.receive(maxBytes: -1) }, mentioning: "maxBytes must not be negative")
        try expectInvalidArgument(Result<Void, any Error> { try udp.setMulticastTimeToLive(256) }, mentioning: "0...255")

        // The stream is still fine.
        try await b.write(Array("ok".utf8))
        #expect(try await a.read(maxBytes: 2) == Array("ok".utf8))
    }

    @Test func aMisusedSendBatchTrapsSayingWhy() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = UDPSendBatch(capacity: 0)
        }
        let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
        #expect(message.contains("UDPSendBatch capacity must be 1...64, not 0"), "standard error: \(message)")
    }

    @Test func aFullSendBatchTrapsSayingWhy() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let batch = UDPSendBatch(capacity: 1, datagramSize: 8)
            batch.append([1, 2, 3])
            batch.append([4])
        }
        let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
        #expect(message.contains("the UDPSendBatch is full (1 datagrams)"), "standard error: \(message)")
    }
}

private func expectInvalidArgument<Success>(
    _ result: Result<Success, any Error>, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    guard case .failure(let error) = result, let ioError = error as? IOError else {
        Issue.record("expected an IOError with EINVAL, got \(result)", sourceLocation: sourceLocation)
        return
    }
    #expect(ioError.errno == .invalidArgument, sourceLocation: sourceLocation)
    #expect(ioError.description.contains(text), "\(ioError)", sourceLocation: sourceLocation)
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
