import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import IOPoolHTTP
import SystemPackage
import Testing

/// A caller's mistake that `serve` can report gets a thrown error that says what was wrong,
/// not a trap (a `precondition` loses its message in an optimized build and takes the process down).
@Suite(.timeLimit(.minutes(1)))
struct ServerMisuseTests {
    @Test func servingOnAnIOThreadPoolWithTheWrongListenerCountThrowsInvalidArgument() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        let server = HTTPServer { _, _, writer in
            try await writer.respond(HTTPResponse(status: .ok))
        }
        do {
            try await server.serve([listener], on: pool)
            Issue.record("serve with 1 listener for 2 threads returned instead of throwing")
        } catch let error as IOError {
            #expect(error.errno == .invalidArgument)
            #expect(error.description.contains("one listener per thread (2), got 1"), "\(error)")
        }
        // The listener is still the caller's and still open: nothing was served or closed.
        #expect(throws: Never.self) { _ = try listener.localAddress }
        listener.close()
        await pool.shutdownGracefully()
    }
}
