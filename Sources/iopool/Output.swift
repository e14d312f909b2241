import Glibc

/// Writes a line to stderr, unbuffered.
func printError(_ message: String) {
    writeLine(message, to: 2)
}

/// Writes a line to stdout, unbuffered (so a parent process that waits for it sees it at once).
func printLine(_ message: String) {
    writeLine(message, to: 1)
}

private func writeLine(_ message: String, to fd: CInt) {
    var line = message + "\n"
    line.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

/// A benchmark that cannot run, with the reason in words.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
