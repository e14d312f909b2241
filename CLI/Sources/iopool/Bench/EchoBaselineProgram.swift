import Foundation

/// The C programs of Benchmarks/echo-baseline, compiled on the spot for `iopool bench echo`: the
/// minimal epoll echo server (the baseline server) and the ping-pong load client (which drives
/// every server: in C, it costs less per message than any server it drives, so that the server,
/// not the client, sets the pace).
enum EchoBaselineProgram: String {
    case server = "c_epoll_echo"
    case loadClient = "pingpong_client"

    var source: String { "Benchmarks/echo-baseline/\(rawValue).c" }

    /// Compiles the program into `directory` with $CC if set, or else the first of cc, gcc and
    /// clang found; returns the binary's path. Throws, saying what is missing, when the source is not
    /// here (not run from the package root), no compiler is found, or the compiler fails.
    func compile(into directory: String) async throws -> String {
        guard FileManager.default.fileExists(atPath: source) else {
            throw BenchError("\(source) is not here (run the bench from the package root)")
        }
        guard let compiler = try await Self.compiler() else {
            let tried = ProcessInfo.processInfo.environment["CC"].map { "$CC (\($0))" } ?? "cc, gcc or clang"
            throw BenchError("no C compiler (\(tried)) to compile \(source)")
        }
        let binary = directory + "/" + rawValue
        let log = binary + ".compile.log"
        let status = try await runShell("\(compiler) -O2 -Wall -Wextra -pthread -o '\(binary)' '\(source)' >'\(log)' 2>&1")
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw BenchError("\(compiler) could not compile \(source) (exit status \(status)):\n\(output)")
        }
        return binary
    }

    private static func compiler() async throws -> String? {
        let chosen = ProcessInfo.processInfo.environment["CC"].map { [$0] }
        for candidate in chosen ?? ["cc", "gcc", "clang"] {
            if try await runShell("command -v \(candidate) >/dev/null 2>&1") == 0 { return candidate }
        }
        return nil
    }
}
