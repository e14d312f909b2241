import ArgumentParser
import Testing

@testable import iopool

/// Every numeric option of every subcommand refuses a bad value at parse time, with a message that
/// names the option, the value and the rule; "-1" is a value to check, not a flag.
@Suite struct OptionRulesTests {
    /// The message `arguments` get from parsing `iopool` (what the user sees after "Error: ").
    private func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try IOPoolCommand.parseAsRoot(arguments)
            return nil
        } catch {
            return IOPoolCommand.message(for: error)
        }
    }

    @Test(arguments: [
        (["echo-server", "--port", "-1"], "--port -1: expected a whole number from 0 to 65535"),
        (["echo-server", "--port", "65536"], "--port 65536: expected a whole number from 0 to 65535"),
        (["echo-server", "--threads", "-1"], "--threads -1: expected a whole number of at least 1"),
        (["echo-server", "--threads", "0"], "--threads 0: expected a whole number of at least 1"),
        (["echo-server", "--grace-period", "-1"], "--grace-period -1.0: expected a finite number of seconds from 0 to 1000000000"),
        (["echo-server", "--grace-period", "nan"], "--grace-period nan: expected a finite number of seconds from 0 to 1000000000"),
        (["echo-server", "--grace-period", "inf"], "--grace-period inf: expected a finite number of seconds from 0 to 1000000000"),
        (["echo-server", "--grace-period", "1e300"], "--grace-period 1e+300: expected a finite number of seconds from 0 to 1000000000"),
        (["load", "--port", "-1"], "--port -1: expected a whole number from 1 to 65535"),
        (["load", "--port", "0"], "--port 0: expected a whole number from 1 to 65535"),
        (["load", "--port", "7", "-c", "-1"], "--connections -1: expected a whole number of at least 1"),
        (["load", "--port", "7", "--size", "0"], "--size 0: expected a whole number of at least 1"),
        (["load", "--port", "7", "-k", "-2"], "--depth -2: expected a whole number of at least 1"),
        (["load", "--port", "7", "--threads", "-1"], "--threads -1: expected a whole number of at least 1"),
        (["load", "--port", "7", "--warmup", "-1"], "--warmup -1.0: expected a finite number of seconds from 0 to 1000000000"),
        (["load", "--port", "7", "--duration", "0"], "--duration 0.0: expected a finite number of seconds greater than 0, at most 1000000000"),
        (["load", "--port", "7", "--duration", "inf"], "--duration inf: expected a finite number of seconds greater than 0, at most 1000000000"),
        (["bench", "echo", "--threads", "-1"], "--threads -1: expected a whole number of at least 1"),
        (["bench", "echo", "--client-threads", "0"], "--client-threads 0: expected a whole number of at least 1"),
        (["bench", "echo", "--depth", "-1"], "--depth -1: expected a whole number of at least 1"),
        (["bench", "echo", "--rounds", "-1"], "--rounds -1: expected a whole number of at least 1"),
        (["bench", "echo", "--warmup", "nan"], "--warmup nan: expected a finite number of seconds from 0 to 1000000000"),
        (["bench", "echo", "--seconds", "-1"], "--seconds -1.0: expected a finite number of seconds greater than 0, at most 1000000000"),
        (["bench", "echo", "--connections", "-1"], "--connections '-1': expected positive whole numbers separated by commas, e.g. 1,16,256"),
        (["bench", "echo", "--sizes", "-64"], "--sizes '-64': expected positive whole numbers separated by commas, e.g. 1,16,256"),
        (["bench", "scheduler", "--threads", "-1"], "--threads -1: expected a whole number of at least 1"),
        (["bench", "scheduler", "--iterations", "0"], "--iterations 0: expected a whole number of at least 1"),
        (["bench", "blocking", "--threads", "-1"], "--threads -1: expected a whole number of at least 1"),
        (["bench", "blocking", "--seconds", "inf"], "--seconds inf: expected a finite number of seconds greater than 0, at most 1000000000"),
        (["bench", "timers", "--sizes", "-1"], "--sizes '-1': expected positive whole numbers separated by commas, e.g. 1,16,256"),
        (["bench", "timers", "--cancel-percent", "-1"], "--cancel-percent -1: expected a whole number from 0 to 100"),
        (["bench", "timers", "--repetitions", "0"], "--repetitions 0: expected a whole number of at least 1"),
        (["bench", "timers", "--seed", "-1"], "--seed -1: expected a whole number from 0 to 9223372036854775807"),
        (["bench", "udp", "--burst", "-1"], "--burst -1: expected a whole number of at least 1"),
        (["bench", "udp", "--size", "0"], "--size 0: expected a whole number of at least 1"),
        (["bench", "udp", "--batch", "65"], "--batch 65: expected a whole number from 1 to 64"),
        (["bench", "udp", "--rounds", "-1"], "--rounds -1: expected a whole number of at least 1"),
    ])
    func aBadNumberIsRefusedNamingTheValueAndTheRule(arguments: [String], message: String) {
        #expect(refusal(arguments) == message)
    }

    @Test func goodNumbersAreAccepted() {
        for arguments in [
            ["echo-server", "--port", "0", "--threads", "1", "--grace-period", "0"],
            ["echo-server", "--port", "65535", "--grace-period", "1000000000"],
            ["load", "--port", "7000", "-c", "1", "-m", "1", "-k", "1", "--warmup", "0", "--duration", "0.5", "--threads", "1"],
            ["bench", "echo", "--connections", "1,2", "--sizes", "64", "--rounds", "1", "--warmup", "0", "--seconds", "0.1"],
            ["bench", "timers", "--cancel-percent", "0", "--seed", "0"],
            ["bench", "udp", "--batch", "64"],
        ] {
            #expect(refusal(arguments) == nil, "\(arguments)")
        }
    }
}
