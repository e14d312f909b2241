import Dispatch
@testable import IOPool
import Testing

/// `withTimeout` / `withDeadline` with a non-Sendable closure that runs in the caller's isolation:
/// it may mutate the caller's local state (a reader in a loop), runs on the caller's actor or
/// thread, sees the caller's task-locals, and a timeout never leaves the caller's task cancelled.
@Suite(.timeLimit(.minutes(1)))
struct TimeoutInlineTests {
    /// A local, non-Sendable line reader over a stream: the shape that did not compile with an
    /// `@escaping @Sendable` operation ("mutation of captured var in concurrently-executing code").
    struct LocalLineReader {
        let stream: TCPStream
        var buffer: [UInt8] = []

        mutating func next() async throws -> String? {
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    defer { buffer.removeSubrange(...newline) }
                    return String(decoding: buffer[..<newline], as: UTF8.self)
                }
                let chunk = try await stream.read()
                if chunk.isEmpty { return nil }
                buffer += chunk
            }
        }
    }

    @Test(arguments: TestPlace.allCases)
    func aLocalReaderIsReadInALoopUnderATimeout(_ place: TestPlace) async throws {
        let lines = try await place.run { () async throws -> [String] in
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            defer { listener.close() }
            let peer = try await TCPStream.connect(to: try listener.localAddress)
            let server = try await listener.accept()
            defer { server.close() }
            try await peer.write(Array("one\ntwo\n".utf8))
            try await peer.write(Array("three\n".utf8))
            peer.close()
            var reader = LocalLineReader(stream: server)
            var lines: [String] = []
            while let line = try await withTimeout(.seconds(30), operation: { try await reader.next() }) {
                lines.append(line)
            }
            return lines
        }
        #expect(lines == ["one", "two", "three"])
    }

    /// A fired timer cancels only the operation: the caller's task is not cancelled afterwards, and
    /// its next sleep and read work.
    @Test(arguments: TestPlace.allCases)
    func aTimeoutLeavesTheCallerUncancelled(_ place: TestPlace) async throws {
        let (error, cancelledAfter, sleptAfter) = try await place.run { () async throws -> (TimeoutError?, Bool, Bool) in
            var error: TimeoutError?
            do {
                try await withTimeout(.milliseconds(1)) { try await sleep(for: .seconds(3600)) }
            } catch let timeout as TimeoutError {
                error = timeout
            }
            let cancelledAfter = Task.isCancelled
            try await sleep(for: .milliseconds(1))
            return (error, cancelledAfter, true)
        }
        #expect(error == TimeoutError(timeout: .milliseconds(1)))
        #expect(!cancelledAfter)
        #expect(sleptAfter)
    }

    /// The operation may mutate an `inout` parameter and other non-Sendable state of the caller.
    @Test func theOperationMutatesAnInoutParameter() async throws {
        func addOne(_ value: inout Int) async throws {
            try await withTimeout(.seconds(30)) {
                try await sleep(for: .milliseconds(1))
                value += 1
            }
        }
        var value = 41
        try await addOne(&value)
        #expect(value == 42)
    }

    actor Counter {
        var count = 0
        /// Mutates its own state from inside the operation: the operation runs on this actor.
        func incrementUnderTimeout() async throws -> Int {
            var local = 0
            try await withTimeout(.seconds(30)) {
                self.assertIsolated("the operation runs on the caller's actor")
                try await sleep(for: .milliseconds(1))
                local += 1
            }
            assertIsolated()
            count += local
            return count
        }
    }

    @Test func onAnActorTheOperationRunsOnTheActor() async throws {
        let counter = Counter()
        #expect(try await counter.incrementUnderTimeout() == 1)
        #expect(try await counter.incrementUnderTimeout() == 2)
    }

    @Test(arguments: TestPlace.allCases)
    func theOperationSeesTheCallersTaskLocals(_ place: TestPlace) async throws {
        let seen = try await place.run {
            try await TaskLocalProbe.$requestID.withValue("timed") {
                try await withTimeout(.seconds(30)) { TaskLocalProbe.requestID }
            }
        }
        #expect(seen == "timed")
    }

    // MARK: withDeadline

    @Test func aPassedDeadlineIsATimeoutNamingIt() async throws {
        let deadline = IOClock.now
        await #expect(throws: TimeoutError(timeout: .zero, deadline: deadline)) {
            try await withDeadline(deadline) { try await sleep(for: .seconds(3600)) }
        }
    }

    @Test func aDeadlineNotReachedReturnsTheValue() async throws {
        let value = try await withDeadline(IOClock.now.advanced(by: .seconds(30))) { () async throws -> Int in
            try await sleep(for: .milliseconds(1))
            return 7
        }
        #expect(value == 7)
        let never = try await withDeadline(IOClock.Instant(nanoseconds: .max)) { 8 }
        #expect(never == 8)
    }

}
