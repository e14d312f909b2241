// swift-tools-version: 6.1
import PackageDescription

// Linux only (epoll, Glibc): no `platforms` entry, because declaring macOS would claim a build that
// cannot succeed there (see README, "Install").
let package = Package(
    name: "swift-iopool",
    products: [
        .library(name: "IOPool", targets: ["IOPool"]),
        // `Service` conformances for both pools: a product of its own, so that depending on IOPool
        // alone does not bring in swift-service-lifecycle.
        .library(name: "IOPoolServiceLifecycle", targets: ["IOPoolServiceLifecycle"]),
        // The `iopool` CLI is a package of its own, CLI/: a dependent resolves every package named
        // here, so naming swift-argument-parser here would make every library user fetch it.
        // Both pools' counters exported through swift-metrics: a product of its own, so that
        // depending on IOPool alone does not bring in swift-metrics.
        .library(name: "IOPoolMetrics", targets: ["IOPoolMetrics"]),
        // HTTP/1.1 server on the pools, on swift-http-types (no SwiftNIO type in it).
        .library(name: "IOPoolHTTP", targets: ["IOPoolHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // The C shims (include/CIOPoolShims.h lists them): `_Thread_local` slots for "the IOThread
        // or worker running on this thread" (one TLS load, as NIO's event_loop_id.c), the running
        // task's address, CPU affinity and thread names, accept4 and recvmmsg/sendmmsg (GNU
        // extensions the Glibc module lacks), raw read/send (glibc's wrappers are cancellation
        // points), epoll_pwait2 with a nanosecond timeout, and the hooks that redirect Swift's
        // global executor.
        .target(name: "CIOPoolShims"),
        .target(
            name: "IOPool",
            dependencies: [
                "CIOPoolShims",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
                // Rare events only (accept back-off, blocking budget exhausted, thread start/stop):
                // see `IOThreadPool.Configuration.logger`.
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "IOPoolServiceLifecycle",
            dependencies: [
                "IOPool",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "IOPoolMetrics",
            dependencies: [
                "IOPool",
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "IOPoolHTTP",
            dependencies: [
                "IOPool",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // Rare events only (a connection's handler failed, accept back-off).
                .product(name: "Logging", package: "swift-log"),
                // `HTTPService`: an HTTP server is what a ServiceGroup runs.
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "IOPoolHTTPTests",
            dependencies: [
                "IOPool",
                "IOPoolHTTP",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "SystemPackage", package: "swift-system"),
                "IOPoolServiceLifecycle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The real-client tests' Python scripts and wrk's Lua script, run in place (#filePath).
            exclude: ["Clients"]
        ),
        .testTarget(
            name: "IOPoolTests",
            dependencies: [
                "IOPool",
                "IOPoolServiceLifecycle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IOPoolMetricsTests",
            dependencies: [
                "IOPool",
                "IOPoolMetrics",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
