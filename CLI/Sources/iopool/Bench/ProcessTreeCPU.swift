import Foundation
import Glibc

/// The CPU time of a process and all its descendants, in nanoseconds: for a server that is a
/// tree of processes (nginx's master and its worker), not one. Each process's CPU clock
/// (`clock_getcpuclockid`: all its threads, to the nanosecond), summed over the process and every
/// process whose parent chain leads to it, found in /proc. A descendant that ends between two
/// readings takes its time with it: read it around a window in which the tree does not change.
enum ProcessTreeCPU {
    static func nanoseconds(root: pid_t) -> Int64 {
        processTree(root: root).reduce(0) { $0 + processCPUNanoseconds($1) }
    }

    /// `root` and its descendants (those alive now).
    static func processTree(root: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let parent = parentPID(of: pid) else { continue }
            children[parent, default: []].append(pid)
        }
        var tree = [root]
        var index = 0
        // Bounded: every process appears once in `children`, so the walk ends.
        while index < tree.count {
            tree += children[tree[index]] ?? []
            index += 1
        }
        return tree
    }

    /// The fourth field of /proc/PID/stat, after the command name in parentheses (which may itself
    /// hold spaces and parentheses, hence the last ')').
    private static func parentPID(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    /// 0 for a process that has ended (or that this one may not read).
    private static func processCPUNanoseconds(_ pid: pid_t) -> Int64 {
        var clock = clockid_t()
        guard clock_getcpuclockid(pid, &clock) == 0 else { return 0 }
        var time = timespec()
        guard clock_gettime(clock, &time) == 0 else { return 0 }
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
