import Glibc
import IOPool
import Testing

/// EMFILE on accept (issue 4, "the hard edges"): the built `iopool echo-server` runs in a
/// subprocess under `ulimit -n 64`; the test opens more connections than that allows and shows
/// that the listener backs off instead of failing or spinning a core, serves again once the
/// connections close, and counts its back-offs (printed at SIGTERM).
///
/// A subprocess, because lowering RLIMIT_NOFILE in the test process would starve every other
/// test running beside it. The binary is the `iopool` that `swift build --build-tests` (and so
/// `swift test`) links next to the test bundle; under `--sanitize=thread` it is the TSan build.
/// `.ci/emfile-smoke.sh` keeps doing the same on the release binary in CI.
@Suite(.timeLimit(.minutes(2)))
struct AcceptOutOfDescriptorsTests {
    /// The server's descriptor limit, and how many connections the test holds open (well over it).
    static let descriptorLimit = 64
    static let heldConnections = 120
    /// CPU the server may use while out of descriptors, over `idleWindow`: a spinning accept loop
    /// uses all of it (one core), a backing-off one ~0.1% (a retry every 100 ms).
    static let idleWindow: Duration = .seconds(2)
    static let cpuAllowance = 0.3

    @Test(arguments: ["io", "stealing"])
    func listenerBacksOffWithoutSpinningAndServesAgain(pool: String) async throws {
        let server = try ChildProcess(
            iopool: ["echo-server", "--host", "127.0.0.1", "--port", "0", "--threads", "1", "--grace-period", "1", "--pool", pool],
            descriptorLimit: Self.descriptorLimit)
        defer { server.killIfRunning() }
        let address = try await server.listeningAddress(within: .seconds(60))
        try await expectEcho(address, "before")

        var held: [TCPStream] = []
        defer { for stream in held { stream.close() } }
        for _ in 0..<Self.heldConnections { held.append(try await TCPStream.connect(to: address)) }
        // Out of descriptors: every slot under the limit is taken (a few margin for what the
        // runtime opens lazily). Waits until the server has accepted that many.
        let open = try await server.openDescriptors(atLeast: Self.descriptorLimit - 4, within: .seconds(30))
        #expect(open >= Self.descriptorLimit - 4, "the server holds \(open) descriptors; it never ran out")

        let before = try server.cpuSeconds()
        try await Task.sleep(for: Self.idleWindow)
        let spent = try server.cpuSeconds() - before
        #expect(spent < Self.cpuAllowance, "the server used \(spent) s of CPU in \(Self.idleWindow) while out of descriptors: it spins")

        for stream in held { stream.close() }
        held = []
        try await expectEcho(address, "served again after descriptors were freed")

        let (status, output) = try await server.terminate(within: .seconds(60))
        #expect(status == .exited(0), "echo-server ended with \(status) after SIGTERM:\n\(output)")
        let backoffs = backoffCount(in: output)
        print("EMFILE (--pool \(pool)): \(open) descriptors open, \(spent) s CPU over \(Self.idleWindow) out of descriptors, \(backoffs.map(String.init) ?? "no") accept back-offs")
        #expect((backoffs ?? 0) > 0, "accept back-offs: \(backoffs.map(String.init) ?? "not reported"); output:\n\(output)")
        // The pool's logger (stderr in the CLI) reports each accept() that backs off once, when it
        // starts backing off and when it recovers, not each back-off (how many accept() calls back
        // off depends on how the freed descriptors race the queued connections).
        let warnings = output.split(separator: "\n").filter { $0.contains("accept backing off") }
        let recoveries = output.split(separator: "\n").filter { $0.contains("accept recovered after backing off") }
        #expect(!warnings.isEmpty && warnings.count <= (backoffs ?? 0), "output:\n\(output)")
        #expect(recoveries.count <= warnings.count, "output:\n\(output)")
        let kind = pool == "io" ? "IOThreadPool" : "WorkStealingPool"
        for warning in warnings {
            #expect(warning.contains("iopool.pool-kind=\(kind)") && warning.contains("iopool.errno="), "\(warning)")
        }
    }
}

// MARK: - Helpers

/// Connects, sends `text`, half-closes, and expects it back whole before EOF (within 30 s).
private func expectEcho(_ address: SocketAddress, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let echoed = try await withTimeout(.seconds(30)) { () async throws -> [UInt8] in
        let stream = try await TCPStream.connect(to: address)
        defer { stream.close() }
        try await stream.write(Array(text.utf8))
        try stream.shutdown(.write)
        var result: [UInt8] = []
        while true {
            let bytes = try await stream.read()
            if bytes.isEmpty { return result }
            result += bytes
        }
    }
    #expect(String(decoding: echoed, as: UTF8.self) == text, sourceLocation: sourceLocation)
}

/// N in "accept back-offs (out of descriptors or memory): N".
private func backoffCount(in output: String) -> Int? {
    let marker = "accept back-offs (out of descriptors or memory): "
    guard let range = output.range(of: marker) else { return nil }
    return Int(output[range.upperBound...].prefix { $0.isNumber })
}

/// What the test reads of the server beside its output.
private extension ChildProcess {
    /// Waits until the process has at least `count` descriptors open (or the limit passes);
    /// returns the last count seen.
    func openDescriptors(atLeast count: Int, within limit: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + limit
        var seen = 0
        while ContinuousClock.now < deadline {
            seen = descriptorCount()
            if seen >= count { return seen }
            try await Task.sleep(for: .milliseconds(50))
        }
        return seen
    }

    func descriptorCount() -> Int {
        guard let directory = opendir("/proc/\(pid)/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != 0x2E { count += 1 }  // not "." or ".."
        }
        return count
    }

    /// User plus system CPU time of the process so far (/proc/PID/stat fields 14 and 15).
    func cpuSeconds() throws -> Double {
        let stat = try readText("/proc/\(pid)/stat")
        guard let close = stat.lastIndex(of: ")") else { throw TestFailure("unexpected /proc/\(pid)/stat: \(stat)") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw TestFailure("unexpected /proc/\(pid)/stat: \(stat)")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Sends SIGTERM and waits for the exit; returns how it ended and the output.
    func terminate(within limit: Duration) async throws -> (status: ExitStatus, output: String) {
        kill(pid, SIGTERM)
        return (try await exitStatus(within: limit), output)
    }
}
