// swift-tools-version: 6.1
//
// Comparisons that need other libraries, kept out of the main package so that building
// swift-iopool never builds SwiftNIO or the benchmark harness (see ../shared/DESIGN.md, Layout).
//
// - `nio-echo-handler`, `nio-echo-async`: SwiftNIO echo servers with the CLI contract of
//   `iopool echo-server`, usable as `--peer` in `iopool bench echo`.
// - `IOPoolBenchmarks`: ordo-one/benchmark benchmarks (malloc counts, wall time) for one echo
//   round trip and one spawn: `swift package --package-path Benchmarks benchmark`.
//
// Versions are pinned exactly: the numbers in README.md were measured with them.
import PackageDescription

let package = Package(
    name: "swift-iopool-benchmarks",
    products: [
        .executable(name: "nio-echo-handler", targets: ["nio-echo-handler"]),
        .executable(name: "nio-echo-async", targets: ["nio-echo-async"]),
    ],
    dependencies: [
        .package(name: "swift-iopool", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        // SIGINT/SIGTERM for the NIO servers (UnixSignals), as `iopool echo-server` has them.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        // The malloc counters need the interposer trait. Naming the traits replaces the package's
        // defaults, which also turns off "RuntimeInterposer" (ARC counters on Linux with Swift
        // 6.3; its package is not available here, and these benchmarks do not need it).
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The two NIO echo servers as library code: the executables below serve them, and the
        // benchmarks run the same code in-process.
        .target(
            name: "NIOEchoServers",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // What both server executables share: the options and SIGINT/SIGTERM handling.
        .target(
            name: "EchoServerCLI",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "nio-echo-handler",
            dependencies: [
                "NIOEchoServers",
                "EchoServerCLI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "nio-echo-async",
            dependencies: [
                "NIOEchoServers",
                "EchoServerCLI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The benchmark plugin finds its targets under Benchmarks/<Name>/ (its convention).
        .executableTarget(
            name: "IOPoolBenchmarks",
            dependencies: [
                "NIOEchoServers",
                .product(name: "IOPool", package: "swift-iopool"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/IOPoolBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
