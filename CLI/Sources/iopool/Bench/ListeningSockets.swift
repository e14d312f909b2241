import Foundation
import Glibc

/// Who listens on a TCP port, from /proc: the sockets in state LISTEN on the port in
/// /proc/net/tcp and /proc/net/tcp6 (by inode), and the `socket:[INODE]` links in /proc/PID/fd of
/// a process tree. `ServerProcess` waits on this rather than on a connect that succeeds: a connect
/// says only that *something* listens there, and the port (free a moment before it was handed to
/// the server) may meanwhile have gone to another process, such as another test's server.
enum ListeningSockets {
    /// Who holds the sockets listening on a port, seen from one process tree.
    struct Holders: Equatable {
        /// Listening sockets on the port held by the tree.
        var tree = 0
        /// Listening sockets on the port not held by the tree: another process's.
        var others = 0
    }

    /// The listening sockets on `port` (any local address, IPv4 or IPv6), and which of them the
    /// process `root` or one of its descendants holds open.
    static func holders(of port: UInt16, tree root: pid_t) -> Holders {
        // The table first, the descriptors after: a socket listed has been open since before
        // the descriptors are read, so its holder, if in the tree, still holds it then.
        let listening = inodes(listeningOn: port)
        guard !listening.isEmpty else { return Holders() }
        let held = socketInodes(of: ProcessTreeCPU.processTree(root: root))
        let tree = listening.intersection(held).count
        return Holders(tree: tree, others: listening.count - tree)
    }

    /// The inodes of the sockets in state LISTEN on local port `port`.
    static func inodes(listeningOn port: UInt16) -> Set<UInt64> {
        var inodes: Set<UInt64> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            // "sl local_address rem_address st ... uid timeout inode": the local address is
            // HEXADDRESS:HEXPORT, the state 0A is LISTEN, the inode is the tenth field.
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                    UInt16(fields[1][fields[1].index(after: colon)...], radix: 16) == port, let inode = UInt64(fields[9])
                else { continue }
                inodes.insert(inode)
            }
        }
        return inodes
    }

    /// The inodes of the sockets that the processes `pids` hold open (those this process may read).
    static func socketInodes(of pids: [pid_t]) -> Set<UInt64> {
        var inodes: Set<UInt64> = []
        for pid in pids {
            let directory = "/proc/\(pid)/fd"
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + entry),
                    target.hasPrefix("socket:["), target.hasSuffix("]"), let inode = UInt64(target.dropFirst(8).dropLast())
                else { continue }
                inodes.insert(inode)
            }
        }
        return inodes
    }
}
