/// Stops the process for a misuse of the API that cannot be reported as a thrown error (a
/// non-throwing call given an argument outside its documented range), saying what was wrong.
///
/// Why not `precondition`: Swift drops `precondition` messages in optimized (`-O`) builds, where
/// a trap would print only "Illegal instruction"; `fatalError` keeps its message in every build
/// mode except `-Ounchecked`. Internal invariants (a bug in swift-iopool, not in its caller) stay
/// `precondition`/`assert`; misuse by a caller goes through here, or, where the function already
/// throws, is a thrown ``IOError`` with `EINVAL` naming the value and the rule.
func misuse(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("swift-iopool misuse: \(message())", file: file, line: line)
}

/// `precondition` for a caller's misuse: traps with the message in every build mode (see `misuse`).
@inline(__always)
func usagePrecondition(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { misuse(message(), file: file, line: line) }
}

extension IOError {
    /// A bad argument to a throwing call: `EINVAL`, naming the call with its value and the rule.
    static func invalidArgument(_ operation: String, _ rule: String) -> IOError {
        IOError(errno: .invalidArgument, operation: operation, detail: rule)
    }
}
