import Glibc
@testable import IOPool
import SystemPackage
import Testing

// Helpers for the stream toolkit's suites (BufferedReaderTests, StreamHalvesTests,
// GatheredWriteTests, ReadIntoStorageTests): every I/O test runs on an IOThreadPool, on a
// WorkStealingPool, and off-pool (a plain `Task {}` on Swift's global executor).

/// Where a test's body runs.
enum StreamContext: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case ioThreads, workStealing, offPool
    var testDescription: String { rawValue }
}

/// Runs `body` in `context` (a fresh two-thread pool, or a plain task) and returns its result; the
/// test's cancellation (its time limit) cancels the body, so a hang fails instead of hanging.
func onContext<Success: Sendable>(
    _ context: StreamContext, _ body: sending @escaping () async throws -> Success
) async throws -> Success {
    switch context {
    case .ioThreads:
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let task = try pool.spawn(body)
        let result = await Result { try await value(of: task) {} }
        await pool.shutdown()
        return try result.get()
    case .workStealing:
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
        let task = try pool.spawn(body)
        let result = await Result { try await value(of: task) {} }
        await pool.shutdown()
        return try result.get()
    case .offPool:
        return try await value(of: Task(operation: body)) {}
    }
}

/// A connected TCP pair (the connecting end, the accepted end) on 127.0.0.1; call it where the
/// streams will be used, since their first operation decides where they wait.
func connectedTCPStreams() async throws -> (client: TCPStream, server: TCPStream) {
    let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
    defer { listener.close() }
    let address = try listener.localAddress
    async let accepted = listener.accept()
    let client = try await TCPStream.connect(to: address)
    return (client, try await accepted)
}

/// Closes `stream` with SO_LINGER 0: the peer gets a reset (RST), not an end of stream.
func reset(_ stream: TCPStream) throws {
    try stream.handle.setOption(level: SOL_SOCKET, name: SO_LINGER, linger(l_onoff: 1, l_linger: 0), "setsockopt(SO_LINGER)")
    stream.close()
}

/// Whether the socket's descriptor has been closed (`close()` was called on its core): a use of it
/// is refused with EBADF.
func isClosed(_ handle: SocketHandle) -> Bool {
    (try? handle.withFD("probe") { _ in () }) == nil
}

/// A non-Sendable value handed from one task to the next, never used by two at once (a reader
/// whose read is cancelled in one task and resumed in another).
final class HandOff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// "IOError <errno> <operation>: <detail>", for errors whose detail matters.
func describeWithDetail(_ error: any Error) -> String {
    guard let error = error as? IOError else { return describe(error) }
    guard let detail = error.detail else { return describe(error) }
    return "\(describe(error)): \(detail)"
}

func failure<Success>(_ result: Result<Success, any Error>) -> String {
    switch result {
    case .success(let value): return "returned \(value)"
    case .failure(let error): return describeWithDetail(error)
    }
}

/// Bytes `0, 1, 2, ...` (mod 251), a pattern a reordering or loss shows in.
func patternBytes(_ count: Int, seed: Int = 0) -> [UInt8] {
    // A loop over raw memory, not `map`: megabytes of it in a debug build in milliseconds.
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var value = seed % 251
        for index in 0..<count {
            buffer[index] = UInt8(truncatingIfNeeded: value)
            value = value == 250 ? 0 : value + 1
        }
        initialized = count
    }
}

/// Polls an async `condition` (an actor's state) until it holds; throws after `deadline`.
func waitUntilAsync(_ what: String, deadline: Duration = .seconds(20), _ condition: () async -> Bool) async throws {
    let clock = ContinuousClock()
    let end = clock.now + deadline
    while !(await condition()) {
        guard clock.now < end else { throw TestFailure("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(1))
    }
}
