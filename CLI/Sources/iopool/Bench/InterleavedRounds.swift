/// A measured window's result, as the round loop needs it.
protocol RoundSample {
    /// NaN when the server's CPU clock did not move (its command wraps the server instead of
    /// exec'ing it).
    var serverCPUSeconds: Double { get }
    /// One line for the progress output: rate, p99, CPU per operation, client core.
    var progressSummary: String { get }
}

/// The servers of a comparison as processes of their own (`ServerProcess`, each pinned to the
/// server CPUs, its output in `<benchmark>-server-<name>.log`), measured in turn: per
/// configuration, A B C A B C ... over the rounds, so that the machine's drift lands on every
/// server alike. Every server is started before the first round and stopped after the last.
struct InterleavedRounds<Configuration> {
    var benchmark: String
    var servers: [BenchServer]
    var serverThreads: Int
    var serverCPUs: [Int]?
    var logDirectory: String
    var configurations: [Configuration]
    var rounds: Int

    func run<Sample: RoundSample>(
        label: (Configuration) -> String,
        measure: (ServerProcess, Configuration, _ round: Int) async throws -> Sample,
        progress: (String) -> Void
    ) async throws -> [Sample] {
        var processes: [ServerProcess] = []
        defer {
            // Reached only on an error path with servers still up; the normal path stops them below.
            // Each is collected too, not only killed: a killed child left uncollected is a zombie.
            for process in processes { process.killNow() }
        }
        for server in servers {
            progress("starting \(server.name): \(server.command)")
            let command = server.command.replacingOccurrences(of: "{threads}", with: String(serverThreads))
            processes.append(
                try await ServerProcess.start(
                    name: server.name, command: command, cpus: serverCPUs,
                    logPath: logDirectory + "/\(benchmark)-server-" + Self.fileName(server.name) + ".log"))
        }
        var samples: [Sample] = []
        let total = configurations.count * rounds * processes.count
        var done = 0
        for configuration in configurations {
            for round in 1...rounds {
                for process in processes {
                    done += 1
                    let sample = try await measure(process, configuration, round)
                    samples.append(sample)
                    if sample.serverCPUSeconds.isNaN {
                        progress("warning: \(process.name)'s CPU clock did not move; does its command exec the server, or wrap it?")
                    }
                    progress("[\(done)/\(total)] \(label(configuration)), round \(round), \(process.name): \(sample.progressSummary)")
                }
            }
        }
        for process in processes {
            let ending = await process.stop()
            if ending != "exit status 0" { progress("warning: \(process.name) ended with \(ending) on SIGTERM") }
        }
        processes = []
        return samples
    }

    /// A server's name as a file name: letters, digits and dashes, the rest underscores.
    static func fileName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
    }
}
