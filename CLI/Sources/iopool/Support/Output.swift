import Glibc

/// Writes a line to stderr, unbuffered.
func printError(_ message: String) {
    writeLine(message, to: 2)
}

/// Writes a line to stdout, unbuffered (so a parent process that waits for it sees it at once).
///
/// If stdout is a pipe whose reader has gone (`iopool bench ... | head -1`), the program ends here
/// with exit status 1 and a line on stderr: everything it would still print is lost, so running on
/// is wasted work. Without this it would die silently by SIGPIPE (which `IOPoolCommand.main`
/// ignores, so that the failure surfaces here as EPIPE).
func printLine(_ message: String) {
    if !writeLine(message, to: 1), errno == EPIPE {
        printError("iopool: stdout was closed (EPIPE); stopping")
        exit(1)
    }
}

/// Writes all of `message` and a newline to `fd` (retrying short writes and EINTR); false with
/// `errno` set if a write failed.
@discardableResult
private func writeLine(_ message: String, to fd: CInt) -> Bool {
    var line = message + "\n"
    return line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }
}

/// A benchmark that cannot run, with the reason in words.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
