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
import Dispatch

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

/// Calls `handler` once, on its own thread, at the first SIGINT or SIGTERM; later ones are ignored.
///
/// The self-pipe trick, as `iopool echo-server` does it: the signal handler only `write`s the
/// signal number to a pipe (async-signal-safe), and a thread of a private Dispatch queue blocks
/// reading it. The handlers are installed with `sigaction` before this returns, so a signal sent
/// the moment the server has announced itself is not lost. (A `DispatchSourceSignal` is not enough:
/// it registers asynchronously after `resume()`, and a signal in that window was dropped.)
public func onShutdownSignal(_ handler: @escaping @Sendable (_ signalName: String) -> Void) {
    var fds: [CInt] = [0, 0]
    guard pipe(&fds) == 0 else { fatalError("pipe() for signal handling failed: errno \(errno)") }
    signalPipeWriteFD = fds[1]
    let readFD = fds[0]
    for number in [SIGINT, SIGTERM] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(signalPipeWriteFD, &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(number, &action, nil)
    }
    DispatchQueue(label: "echo-server.signals").async {
        var byte: UInt8 = 0
        while read(readFD, &byte, 1) != 1 {}
        handler(CInt(byte) == SIGINT ? "SIGINT" : "SIGTERM")
    }
}

/// The pipe the signal handler writes to: a C global, because a signal handler cannot capture
/// context. Written once by `onShutdownSignal` before the handlers are installed, then only read.
nonisolated(unsafe) private var signalPipeWriteFD: CInt = -1
