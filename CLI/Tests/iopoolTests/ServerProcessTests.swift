import Foundation
import IOPool
import Testing

@testable import iopool

/// `ServerProcess`'s readiness: the server under test, the child or one of its descendants, holds
/// a socket listening on its port. A connect that succeeds is not enough: tests run in parallel,
/// and the port handed to one server may meanwhile be another's (a flaky "Connection refused" in
/// HTTPBenchTests, whose server's output was still empty when wrk started).
@Suite struct ServerProcessTests {
    /// A Python server that listens on `{port}` and then sleeps; `wrapped` runs it under a shell
    /// that does not exec it (a grandchild of the bench, as a wrapper script's server is).
    private func listeningServer(wrapped: Bool = false) -> String {
        let python = #"python3 -c 'import socket, time; s = socket.socket(); s.bind(("127.0.0.1", {port})); s.listen(); time.sleep(20)'"#
        return wrapped ? "sh -c \"\(python.replacingOccurrences(of: "\"", with: "\\\"")); true\"" : python
    }

    @Test func aPortThatAnotherProcessListensOnIsNotTheServersReadiness() async throws {
        // The test itself listens: a connect to the port succeeds, though the server never binds it.
        let listener = try TCPListener.bind(try SocketAddress(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        let port = try listener.localAddress.port
        await #expect(throws: ServerProcess.PortTaken.self) {
            _ = try await ServerProcess.start(
                name: "sleeper", command: "sleep 20", port: port, cpus: nil, logPath: try logPath(), timeout: .seconds(10))
        }
    }

    @Test func aServerThatNeverListensFailsAfterTheTimeout() async throws {
        let listener = try TCPListener.bind(try SocketAddress(host: "127.0.0.1", port: 0))
        let port = try listener.localAddress.port
        listener.close()
        await #expect {
            _ = try await ServerProcess.start(
                name: "sleeper", command: "sleep 20", port: port, cpus: nil, logPath: try logPath(), timeout: .seconds(1))
        } throws: { error in
            "\(error)".contains("sleeper: nothing listens on 127.0.0.1:\(port) after 1 s")
        }
    }

    @Test func theServersOwnListenerIsItsReadiness() async throws {
        let server = try await ServerProcess.start(name: "python", command: listeningServer(), cpus: nil, logPath: try logPath())
        #expect(ListeningSockets.holders(of: server.port, tree: server.pid) == .init(tree: 1, others: 0))
        server.killNow()
    }

    @Test func aListenerInADescendantOfTheChildCounts() async throws {
        let server = try await ServerProcess.start(name: "wrapped", command: listeningServer(wrapped: true), cpus: nil, logPath: try logPath())
        #expect(ListeningSockets.holders(of: server.port, tree: server.pid) == .init(tree: 1, others: 0))
        // The wrapper's SIGKILL leaves the Python server; end it too.
        for pid in ProcessTreeCPU.processTree(root: server.pid).dropFirst() { kill(pid, SIGKILL) }
        server.killNow()
    }

    private func logPath() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iopool-server-process-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory + "/server.log"
    }
}
