import CIOPoolShims
import Glibc

/// How many CPUs this process may actually use: the affinity mask (taskset, cpusets) capped by the
/// cgroup v2 `cpu.max` quota (containers), as NIO's `System.coreCount` does.
enum ProcessorCount {
    static let available: Int = {
        var count = Int(ciopool_affinity_cpu_count())
        if count <= 0 { count = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
        if let quota = cgroupV2Quota() { count = min(count, quota) }
        return max(1, count)
    }()

    /// `cpu.max` is "max 100000" (no limit) or "QUOTA PERIOD"; the usable CPUs are ceil(quota / period).
    private static func cgroupV2Quota() -> Int? {
        guard let text = readSmallFile("/sys/fs/cgroup/cpu.max") else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let quota = Double(fields[0]), let period = Double(fields[1]), period > 0 else {
            return nil
        }
        return max(1, Int((quota / period).rounded(.up)))
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }
}
