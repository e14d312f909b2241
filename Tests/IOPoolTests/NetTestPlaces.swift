import Glibc
@testable import IOPool

/// Where a socket test runs its body: each new networking API is tested on both pools and
/// off-pool (Swift's global executor).
enum NetPlace: String, CaseIterable, Sendable, CustomStringConvertible {
    case offPool, ioThreads, workStealing
    var description: String { rawValue }

    /// Runs `body` here: off-pool in the calling task; on a pool in a spawned task, the pool shut
    /// down afterwards.
    func run<Success: Sendable>(_ body: sending @escaping () async throws -> Success) async throws -> Success {
        switch self {
        case .offPool:
            return try await body()
        case .ioThreads:
            let pool = try IOThreadPool(configuration: .init(threadCount: 2))
            let task = try pool.spawn(body)
            defer { Task { await pool.shutdown() } }
            return try await value(of: task) {}
        case .workStealing:
            let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
            let task = try pool.spawn(body)
            defer { Task { await pool.shutdown() } }
            return try await value(of: task) {}
        }
    }
}

/// A listener whose accept queue is full, so that the kernel drops SYNs to it: a connect there
/// never completes (it would after about two minutes of retries) and never fails. Deterministic on
/// loopback: `listen(fd, 0)` admits one connection (`filler`), and the kernel drops SYNs while
/// the queue is full (`tcp_abort_on_overflow` is 0 by default).
struct BlackholedListener {
    let listener: TCPListener
    let filler: TCPStream
    var address: SocketAddress { get throws { try listener.localAddress } }

    init(_ family: SocketAddress.Family) async throws {
        let local = family == .ipv4 ? SocketAddress.loopbackIPv4(port: 0) : SocketAddress.loopbackIPv6(port: 0)
        listener = try TCPListener.bind(local, backlog: 0)
        filler = try await TCPStream.connect(to: try listener.localAddress)
    }

    func close() {
        filler.close()
        listener.close()
    }
}

/// A loopback address where nothing listens (a listener's port, closed again): connects there are
/// refused at once.
func refusedAddress(_ family: SocketAddress.Family) throws -> SocketAddress {
    let local = family == .ipv4 ? SocketAddress.loopbackIPv4(port: 0) : SocketAddress.loopbackIPv6(port: 0)
    let listener = try TCPListener.bind(local)
    defer { listener.close() }
    return try listener.localAddress
}

/// The socket inodes of this process's open descriptors (`/proc/self/fd/N -> socket:[inode]`).
func openSocketInodes() -> Set<UInt64> {
    guard let directory = opendir("/proc/self/fd") else { return [] }
    defer { closedir(directory) }
    var inodes: Set<UInt64> = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name.first?.isNumber == true else { continue }
        var target = [CChar](repeating: 0, count: 256)
        let length = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
        guard length > 0 else { continue }
        let text = String(decoding: target[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("socket:["), let inode = UInt64(text.dropFirst(8).dropLast()) { inodes.insert(inode) }
    }
    return inodes
}

/// Open descriptors of this process that are TCP sockets in SYN_SENT towards `port` (from
/// /proc/net/tcp and tcp6, matched by inode): connect attempts still pending, or leaked.
func pendingConnectSockets(toPort port: UInt16) -> Set<UInt64> {
    openTCPSockets(toPort: port, inState: "02")  // TCP_SYN_SENT
}

/// Open descriptors of this process that are TCP sockets towards `port`, in `state` (the kernel's
/// hex code in /proc/net/tcp) or in any state if nil.
///
/// Scanned as bytes, not split into Strings: the tables list every socket of the machine, TIME_WAIT
/// ones included (thousands after the suite's connection tests), and tests poll this; the String
/// version took tens of milliseconds per call in a debug build, on a thread of Swift's two-thread
/// global executor, and was the suite's largest CPU cost there.
func openTCPSockets(toPort port: UInt16, inState state: String? = nil) -> Set<UInt64> {
    let wantedState = state.flatMap { UInt8($0, radix: 16) }
    var inodes: Set<UInt64> = []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        guard let bytes = try? readWholeFile(table) else { continue }
        bytes.withUnsafeBufferPointer { text in
            var lineStart = 0
            var firstLine = true
            while lineStart < text.count {
                var lineEnd = lineStart
                while lineEnd < text.count && text[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                defer { lineStart = lineEnd + 1 }
                if firstLine { firstLine = false; continue }  // the header
                if let entry = TCPTableEntry(text, lineStart, lineEnd), entry.remotePort == port,
                    wantedState.map({ entry.state == $0 }) ?? true, entry.inode != 0
                {
                    inodes.insert(entry.inode)
                }
            }
        }
    }
    return inodes.isEmpty ? [] : inodes.intersection(openSocketInodes())
}

/// The fields of a /proc/net/tcp line this file needs: `sl local rem st tx:rx tr:when retrnsmt uid
/// timeout inode ...`, whitespace-separated, numbers in hex but the inode (decimal).
private struct TCPTableEntry {
    var remotePort: UInt16 = 0
    var state: UInt8 = 0
    var inode: UInt64 = 0

    init?(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
        var position = start
        var field = 0
        while field <= 9 {
            while position < end && text[position] == UInt8(ascii: " ") { position += 1 }
            guard position < end else { return nil }
            let fieldStart = position
            while position < end && text[position] != UInt8(ascii: " ") { position += 1 }
            switch field {
            case 2:  // rem_address: ADDRESS:PORT
                var colon = position - 1
                while colon > fieldStart && text[colon] != UInt8(ascii: ":") { colon -= 1 }
                remotePort = UInt16(truncatingIfNeeded: TCPTableEntry.number(text, colon + 1, position, radix: 16))
            case 3:
                state = UInt8(truncatingIfNeeded: TCPTableEntry.number(text, fieldStart, position, radix: 16))
            case 9:
                inode = TCPTableEntry.number(text, fieldStart, position, radix: 10)
            default:
                break
            }
            field += 1
        }
    }

    private static func number(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, radix: UInt64) -> UInt64 {
        var value: UInt64 = 0
        for index in start..<end {
            let byte = text[index]
            let digit: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt64(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt64(byte - UInt8(ascii: "a") + 10)
            default: return value
            }
            value = value &* radix &+ digit
        }
        return value
    }
}

private func readWholeFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw TestFailure("open \(path) failed") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes += chunk[..<count]
    }
    return bytes
}
