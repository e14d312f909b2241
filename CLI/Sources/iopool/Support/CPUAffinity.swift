import CIOPoolShims
import Glibc

/// CPU affinity for the benchmarks: which CPUs this process may use, and pinning a thread (and
/// with it every thread or process it starts afterwards, which inherit its mask).
enum CPUAffinity {
    /// The CPUs the calling thread may run on, ascending.
    static var allowed: [Int] {
        var cpus = [CInt](repeating: 0, count: 1024)
        let count = Int(ciopool_affinity_cpus(&cpus, CInt(cpus.count)))
        return cpus.prefix(min(count, cpus.count)).map(Int.init)
    }

    /// Restricts the calling thread to `cpus`.
    static func pinCurrentThread(to cpus: [Int]) throws(BenchError) {
        let values = cpus.map(CInt.init)
        if ciopool_set_thread_affinity(values, CInt(values.count)) != 0 {
            throw BenchError("cannot pin a thread to CPUs \(describe(cpus)): \(String(cString: strerror(errno)))")
        }
    }

    /// Runs `body` with the calling thread restricted to `cpus`, then restores its mask: a process
    /// spawned inside `body` keeps `cpus` (it inherits the spawning thread's mask).
    static func withCurrentThread<Result>(pinnedTo cpus: [Int]?, _ body: () throws -> Result) throws -> Result {
        guard let cpus else { return try body() }
        let previous = allowed
        try pinCurrentThread(to: cpus)
        defer { try? pinCurrentThread(to: previous) }
        return try body()
    }

    /// "0-3,6" style, as taskset prints it.
    static func describe(_ cpus: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        while index < cpus.count {
            var end = index
            while end + 1 < cpus.count, cpus[end + 1] == cpus[end] + 1 { end += 1 }
            parts.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }
}

extension CPUAffinity {
    /// The servers' CPUs and the load client's: the first `server` allowed CPUs, then the next
    /// `client` ones; with fewer CPUs, a split of what there is; nil with one CPU.
    static func split(server: Int, client: Int) -> ([Int]?, [Int]?) {
        let cpus = allowed
        guard cpus.count >= 2 else { return (nil, nil) }
        if cpus.count >= server + client {
            return (Array(cpus.prefix(server)), Array(cpus.dropFirst(server).prefix(client)))
        }
        let serverShare = max(1, min(cpus.count - 1, cpus.count * server / (server + client)))
        return (Array(cpus.prefix(serverShare)), Array(cpus.dropFirst(serverShare)))
    }

    /// The split for a table's heading: "server on CPU 0, wrk on CPU 1", or "not pinned".
    static func describe(server: [Int]?, client: [Int]?, clientName: String) -> String {
        guard let server, let client else { return "not pinned" }
        return "server on CPU \(describe(server)), \(clientName) on CPU \(describe(client))"
    }
}
