#!/usr/bin/env bash
# A new package that depends on swift-iopool by URL and version, as a user's would (issue 13,
# "Done means"): it runs a pool and an echo server in a ServiceGroup with swift-log and
# swift-metrics (PoolMetricsReporter into MetricsTestKit's TestMetrics), echoes once over
# 127.0.0.1, shuts the group down gracefully, and checks the metrics arrived. Then it checks what
# the build fetched and compiled: never swift-argument-parser or the CLI.
#
# "By URL and version": the repository's HEAD, cloned bare into a temporary directory and tagged
# 0.1.0 there, depended on as `.package(url: "file://...", from: "0.1.0")`; the other packages
# resolve by their GitHub URLs as ours do.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone -q --bare "$repo" "$work/swift-iopool.git"
git -C "$work/swift-iopool.git" tag -f 0.1.0 HEAD >/dev/null

mkdir -p "$work/dependent/Sources/Dependent"
cat > "$work/dependent/Package.swift" <<MANIFEST
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "dependent",
    dependencies: [
        .package(url: "file://$work/swift-iopool.git", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(
            name: "Dependent",
            dependencies: [
                .product(name: "IOPool", package: "swift-iopool"),
                .product(name: "IOPoolServiceLifecycle", package: "swift-iopool"),
                .product(name: "IOPoolMetrics", package: "swift-iopool"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
MANIFEST

cat > "$work/dependent/Sources/Dependent/main.swift" <<'SWIFT'
import Glibc
import IOPool
import IOPoolMetrics
import IOPoolServiceLifecycle
import Logging
import MetricsTestKit
import ServiceLifecycle

/// Accepts until the group shuts down; each connection is a task on the pool (the README's).
struct EchoService: Service {
    let pool: IOThreadPool
    let listener: TCPListener

    func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await pool.spawn {
                _ = try? await pool.spawnAll(listener.connections) { connection in
                    defer { connection.close() }
                    _ = try? await copy(from: connection, to: connection)
                    try? connection.shutdown(.write)
                }
            }.value
        } onCancelOrGracefulShutdown: {
            listener.close()
        }
    }
}

let logger = Logger(label: "dependent")
let metrics = TestMetrics()
let pool = try IOThreadPool(configuration: .init(threadCount: 2, logger: logger))
let reporter = try PoolMetricsReporter(pool: pool, configuration: .init(interval: .milliseconds(50), factory: metrics))
try reporter.start()
let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
let address = try listener.localAddress
let group = ServiceGroup(configuration: .init(
    services: [.init(service: pool), .init(service: EchoService(pool: pool, listener: listener))],
    logger: logger))
let client = Task {
    let stream = try await TCPStream.connect(to: address, timeout: .seconds(30))
    defer { stream.close() }
    try await stream.write(Array("hello".utf8))
    try stream.shutdown(.write)
    var reply: [UInt8] = []
    while case let chunk = try await stream.read(), !chunk.isEmpty { reply += chunk }
    try await Task.sleep(for: .milliseconds(200))  // a few reports
    await group.triggerGracefulShutdown()
    return String(decoding: reply, as: UTF8.self)
}
try await group.run()
let reply = try await client.value
let jobs = metrics.counters(label: PoolMetricNames.threadJobs).reduce(0) { $0 + $1.totalValue }
print("echoed: \(reply); \(PoolMetricNames.threadJobs) total: \(jobs)")
guard reply == "hello", jobs > 0 else { print("FAILED"); exit(1) }
SWIFT

cd "$work/dependent"
if ! timeout 900 swift build -v > build.log 2>&1; then
    tail -40 build.log
    echo "error: the dependent package did not build" >&2
    exit 1
fi
if grep -E "(^|/)[^ ]*\.swift:[0-9]+:[0-9]+: warning:" build.log | grep "swift-iopool"; then
    echo "error: building swift-iopool as a dependency gave warnings (above)" >&2
    exit 1
fi
timeout 60 swift run --skip-build Dependent
fetched=$(ls .build/checkouts | tr '\n' ' ')
compiled=$(for m in .build/debug/*.build; do if ls "$m" | grep -q '\.o$'; then basename "$m" .build; fi; done | sort | tr '\n' ' ')
echo "dependent package: checked out: $fetched"
echo "dependent package: compiled: $compiled"
if ls .build/checkouts | grep -qi "argument-parser"; then
    echo "error: a package using swift-iopool's libraries fetched swift-argument-parser" >&2
    exit 1
fi
if echo " $compiled " | grep -qE " (ArgumentParser|iopool) "; then
    echo "error: a package using swift-iopool's libraries compiled the CLI or ArgumentParser" >&2
    exit 1
fi
echo "dependent package: ok"
