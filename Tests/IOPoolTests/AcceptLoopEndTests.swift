import Glibc
@testable import IOPool
import SystemPackage
import Testing

/// After a local `close()`, a listener's `connections` ends (`next()` returns nil), so an accept
/// loop finishes without a catch; `accept()` itself still throws `EBADF`. TCP and Unix, on both
/// pools and off-pool, including a close while `next()` is suspended waiting for a connection.
@Suite(.timeLimit(.minutes(1)))
struct AcceptLoopEndTests {
    /// One listener kind behind one interface.
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case tcp, unix
        var testDescription: String { rawValue }
    }

    /// A bound listener of `kind`: its connections (each closed as it is accepted, counted), a client
    /// connect that returns once the server side closed the connection (EOF), `close`, and `accept`.
    struct Listener: Sendable {
        let acceptAll: @Sendable () async throws -> Int
        let connectUntilServerCloses: @Sendable () async throws -> Void
        let close: @Sendable () -> Void
        let acceptOnce: @Sendable () async throws -> Void

        init(_ kind: Kind) throws {
            switch kind {
            case .tcp:
                let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
                let address = try listener.localAddress
                acceptAll = {
                    var count = 0
                    for try await connection in listener.connections { count += 1; connection.close() }
                    return count
                }
                connectUntilServerCloses = {
                    let client = try await TCPStream.connect(to: address)
                    defer { client.close() }
                    guard try await client.read().isEmpty else { throw TestFailure("expected EOF") }
                }
                close = { listener.close() }
                acceptOnce = { _ = try await listener.accept() }
            case .unix:
                let address = try UnixSocketAddress(abstract: "iopool-accept-end-\(getpid())-\(UInt32.random(in: 0 ... .max))")
                let listener = try UnixListener.bind(address)
                acceptAll = {
                    var count = 0
                    for try await connection in listener.connections { count += 1; connection.close() }
                    return count
                }
                connectUntilServerCloses = {
                    let client = try await UnixStream.connect(to: address)
                    defer { client.close() }
                    guard try await client.read().isEmpty else { throw TestFailure("expected EOF") }
                }
                close = { listener.close() }
                acceptOnce = { _ = try await listener.accept() }
            }
        }
    }

    static let cases = Array(Kind.allCases.flatMap { kind in TestPlace.allCases.map { (kind, $0) } })

    /// The loop takes two connections, then suspends in `next()`; the close ends it with the count.
    @Test(arguments: cases)
    func closeWhileNextIsSuspendedEndsTheLoop(_ kind: Kind, _ place: TestPlace) async throws {
        let accepted = try await place.run {
            let listener = try Listener(kind)
            async let loop = listener.acceptAll()
            try await listener.connectUntilServerCloses()
            try await listener.connectUntilServerCloses()
            // The loop is now in (or entering) its next accept; give it time to suspend there. Both
            // orders must end the loop: a close before the accept suspends is seen by the accept.
            try await sleep(for: .milliseconds(20))
            listener.close()
            return try await loop
        }
        #expect(accepted == 2)
    }

    @Test(arguments: cases)
    func aLoopStartedAfterTheCloseEndsAtOnce(_ kind: Kind, _ place: TestPlace) async throws {
        let accepted = try await place.run {
            let listener = try Listener(kind)
            listener.close()
            return try await listener.acceptAll()
        }
        #expect(accepted == 0)
    }

    /// `accept()` itself keeps throwing: `IOError` with `EBADF`, naming the operation.
    @Test(arguments: cases)
    func acceptAfterCloseThrowsBadFileDescriptor(_ kind: Kind, _ place: TestPlace) async throws {
        let error = try await place.run { () async throws -> IOError? in
            let listener = try Listener(kind)
            listener.close()
            do {
                try await listener.acceptOnce()
                return nil
            } catch let error as IOError {
                return error
            }
        }
        #expect(error?.errno == .badFileDescriptor)
        #expect(error?.operation == "accept")
    }

    /// Cancelling the looping task is still an error (`CancellationError`), not a quiet end.
    @Test(arguments: TestPlace.allCases)
    func cancellingTheLoopThrowsCancellation(_ place: TestPlace) async throws {
        let outcome = try await place.run { () async throws -> String in
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            defer { listener.close() }
            let loop = Task { () async -> String in
                do {
                    for try await connection in listener.connections { connection.close() }
                    return "ended"
                } catch {
                    return "\(type(of: error))"
                }
            }
            try await sleep(for: .milliseconds(10))
            loop.cancel()
            return await loop.value
        }
        #expect(outcome == "CancellationError")
    }
}
