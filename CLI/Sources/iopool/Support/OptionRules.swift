import ArgumentParser
import Foundation

/// The rules for the CLI's numeric options, checked in each command's `validate()`, so that a bad
/// value is refused at parse time with a message that names the option, the value and the rule
/// ("--threads -1: expected a whole number of at least 1"), instead of crashing later (a
/// `--grace-period inf` made `Duration.seconds` trap at SIGTERM) or being misreported.
///
/// Every numeric option is declared with `parsing: .unconditional`: by default ArgumentParser
/// takes a value that starts with a dash ("-1") for an unknown flag and reports "Missing value for
/// '--port <port>'". With `.unconditional` it is the value, and reaches the rule. Ports are `Int`
/// options for the same reason: a `UInt16` option refuses "-1" itself, without saying the rule.
enum OptionRules {
    /// The longest number of seconds an option takes: well inside what `Duration.seconds(Double)`
    /// represents (it traps past Int64.max seconds), and longer than anyone waits (31.7 years).
    static let maximumSeconds = 1e9

    /// A whole number in `range`, e.g. a percentage in 0...100.
    static func check(_ value: Int, _ option: String, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) \(value): expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    /// A count of things (threads, connections, rounds): at least 1.
    static func checkCount(_ value: Int, _ option: String) throws {
        guard value >= 1 else { throw ValidationError("\(option) \(value): expected a whole number of at least 1") }
    }

    /// A TCP port; 0 only where it means "pick a free one" (a server's).
    static func checkPort(_ value: Int, _ option: String, allowingZero: Bool) throws {
        try check(value, option, in: (allowingZero ? 0 : 1)...Int(UInt16.max))
    }

    /// A number of seconds: finite (not inf or nan), at most `maximumSeconds`, and at least 0
    /// (`allowingZero`) or more than 0.
    static func checkSeconds(_ value: Double, _ option: String, allowingZero: Bool) throws {
        guard value.isFinite, allowingZero ? value >= 0 : value > 0, value <= maximumSeconds else {
            let range = allowingZero ? "from 0 to \(Int(maximumSeconds))" : "greater than 0, at most \(Int(maximumSeconds))"
            throw ValidationError("\(option) \(value): expected a finite number of seconds \(range)")
        }
    }

    /// A comma-separated list of positive integers (`--connections 1,16,256`), or a ValidationError
    /// that names the option.
    static func parseList(_ text: String, _ option: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("\(option) '\(text)': expected positive whole numbers separated by commas, e.g. 1,16,256")
        }
        return values.map { $0! }
    }
}
