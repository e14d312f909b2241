import Glibc

/// The signals the tool handles itself, in one place: SIGPIPE ignored in this process, and the
/// signals a child process starts with at their default disposition.
enum Signals {
    /// Ignores SIGPIPE: a write to a closed pipe then fails with EPIPE instead of killing the
    /// process without a word. A closed stdout ends the program through `printLine` (exit status 1,
    /// a line on stderr); sockets already send with MSG_NOSIGNAL.
    static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// The signals a child process (`ChildProcess`) starts with at their default disposition: those
    /// the bench sends it and those a server expects to be able to die of. This process ignores
    /// SIGPIPE, and an ignored signal stays ignored across exec.
    static let defaultInChildProcesses = [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGALRM]
}
