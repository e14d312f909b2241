@testable import IOPool
import Testing

/// A socket registered with a pool that has shut down: every operation on it fails the same way,
/// `ECANCELED` naming the kind of pool, whether or not the kernel has data for it (before, a read
/// with data pending succeeded, one without failed, and on a loop draining its last jobs an
/// operation said `EBADF`, "the socket is closed").
@Suite struct StoppedOwnerErrorTests {
    @Test(arguments: PoolKind.allCases)
    func operationsOnASocketWhosePoolStoppedFailAlikeNamingThePool(pool kind: PoolKind) async throws {
        let pool = try TestPool(kind)
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let address = try listener.localAddress
        // Both ends are first used on the pool, so they register with it.
        let pair = try pool.spawn { () async throws -> [TCPStream] in
            async let accepted = listener.accept()
            let client = try await TCPStream.connect(to: address)
            let server = try await accepted
            try await client.write([0])
            _ = try await server.read(maxBytes: 1)  // the server end's first operation, on the pool
            try await client.write([1, 2, 3])
            return [client, server]
        }
        let streams = try await pair.value
        let (client, server) = (streams[0], streams[1])
        defer { client.close(); server.close() }
        await pool.shutdown()

        let expectedOwner = kind == .ioThreads ? "IOThread" : "WorkStealingPool"
        let outcomes: [(String, Result<Int, any Error>)] = [
            ("read with data pending", await Result(catching: { try await server.read(maxBytes: 16).count })),
            ("read with nothing pending", await Result(catching: { try await client.read(maxBytes: 16).count })),
            ("write", await Result(catching: { try await client.write([4]); return 1 })),
        ]
        for (what, outcome) in outcomes {
            guard case .failure(let error as IOError) = outcome else {
                Issue.record("\(what) on a socket whose \(expectedOwner) stopped: \(outcome)")
                continue
            }
            #expect(error.errno == .canceled, "\(what): \(error)")
            #expect(error.detail?.contains(expectedOwner) == true, "\(what): \(error)")
        }
    }
}
