@testable import IOPool
import Synchronization
import Testing

/// Readiness is bookkept on the socket's owner loop. A read from another thread that waited on the
/// owner and found readiness already set must not leave the flag cleared while data is still
/// queued: the next read on the owner would then trust the flag, skip the syscall and wait for an
/// edge that never comes (the bytes sit in the socket; a request/response peer waits forever).
@Suite struct OffOwnerReadinessTests {
    @Test func aReadOnTheOwnerAfterAPartialReadFromAnotherThreadGetsTheRestOfTheData() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let (owner, other) = (pool.threads[0], pool.threads[1])
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let address = try listener.localAddress
        async let acceptedOnOwner = owner.spawn { () async throws -> TCPStream in
            let stream = try await listener.accept()
            _ = try await stream.read(maxBytes: 1)  // the stream's first operation: it registers on `owner`
            return stream
        }.value
        let client = try await TCPStream.connect(to: address)
        try await client.write([0])
        let server = try await acceptedOnOwner
        defer { client.close(); server.close() }

        // The owner's loop is held busy while a read from the other thread gets EAGAIN and queues its
        // wait on the owner, and the peer's 8 bytes arrive: the loop then handles their edge (no
        // waiter yet) before it runs the queued wait, which finds readiness set.
        let release = Counter()
        let holding = Counter()
        try owner.spawn {
            holding.increment()
            while release.count == 0 {}
        }
        while holding.count == 0 { await Task.yield() }
        let remoteBefore = owner.metrics.remoteEnqueues
        let firstHalf = try other.spawn { () async throws -> [UInt8] in
            try await server.read(maxBytes: 4)
        }
        // The read's wait is queued on the owner (a remote enqueue) once it got EAGAIN.
        while owner.metrics.remoteEnqueues == remoteBefore { try await Task.sleep(for: .milliseconds(1)) }
        try await client.write([1, 2, 3, 4, 5, 6, 7, 8])
        try await Task.sleep(for: .milliseconds(20))  // the bytes reach the server's socket
        release.increment()
        #expect(try await firstHalf.value == [1, 2, 3, 4])

        let secondHalf = try owner.spawn { () async throws -> [UInt8] in
            try await withTimeout(.seconds(5)) { try await server.read(maxBytes: 4) }
        }
        let rest = await secondHalf.result
        switch rest {
        case .success(let bytes): #expect(bytes == [5, 6, 7, 8])
        case .failure(let error): Issue.record("the owner's read never saw the queued bytes: \(error)")
        }
        await pool.shutdown()
    }
}
