import Foundation

// Running this executable and the shell from a command: the path of the running executable (to
// start more of itself as servers) and a shell command run to completion.

/// The path of the running executable (to start more of itself as servers).
func currentExecutable() throws -> String {
    do {
        return try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    } catch {
        throw BenchError("cannot find this executable through /proc/self/exe: \(error.localizedDescription)")
    }
}

/// Runs a shell command to completion; its exit status.
func runShell(_ command: String) async throws -> CInt {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    try process.run()
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    return process.terminationStatus
}
