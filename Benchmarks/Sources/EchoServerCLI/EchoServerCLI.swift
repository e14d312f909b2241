// The command-line contract the NIO echo servers share with `iopool echo-server`, so that
// `iopool bench echo` can run any of them the same way:
//
//     SERVER --host 127.0.0.1 --port N --threads T
//
// - `--port 0` binds a free port; the real one is printed.
// - Once the server accepts connections it prints exactly `listening on HOST:PORT` on stdout,
//   unbuffered (stdout is a pipe under the bench: stdio would hold the line back).
// - SIGINT or SIGTERM stops it; it exits with status 0.

import ArgumentParser
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--host`, `--port`, `--threads`, as `iopool echo-server` spells them.
public struct EchoServerOptions: ParsableArguments {
    @Option(help: "Address to bind (a numeric IPv4 or IPv6 address).")
    public var host = "127.0.0.1"

    @Option(help: "Port to bind; 0 picks a free one.")
    public var port = 7000

    @Option(help: "Event-loop threads.")
    public var threads = 1

    public init() {}

    public func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }
}

/// Prints `listening on HOST:PORT` on stdout with one `write(2)`, so a parent reading a pipe sees
/// it at once (stdio would block-buffer it on a pipe).
public func announceListening(host: String, port: Int) {
    writeLine("listening on \(host):\(port)", to: STDOUT_FILENO)
}

/// Writes one line to stderr (diagnostics stay off stdout, which carries only the announcement).
public func printError(_ line: String) {
    writeLine(line, to: STDERR_FILENO)
}

private func writeLine(_ text: String, to fd: CInt) {
    var line = text + "\n"
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }  // stdout closed: nothing else to do
            offset += written
        }
    }
}

/// Calls `handler` once, from a task of its own, at the first SIGINT or SIGTERM (later ones are
/// not passed to it).
///
/// swift-service-lifecycle's `UnixSignalsSequence` (the signal handling `iopool echo-server` gets
/// from its ServiceGroup): it returns once the signal sources are registered, so a signal sent the
/// moment the server has announced itself is not lost.
public func onShutdownSignal(_ handler: @escaping @Sendable (_ signalName: String) -> Void) async {
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    Task {
        for await signal in signals {
            handler(signal == .sigint ? "SIGINT" : "SIGTERM")
            return
        }
    }
}
