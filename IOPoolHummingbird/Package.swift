// swift-tools-version: 6.1
//
// Hummingbird on IOPoolHTTP's server: kept out of the root package so that building swift-iopool
// never builds SwiftNIO (Hummingbird's Router types bring it in), as Benchmarks/ and CLI/ are.
//
// - `IOPoolHummingbird`: serves a Hummingbird `Router` (any `HTTPResponder` of Hummingbird's) on
//   `HTTPServer`, so an app moves by changing its server.
// - `hummingbird-bench-server`: TechEmpower plaintext and JSON from one router, on Hummingbird's
//   own NIO server or on ours (`--server nio|iopool`), for `iopool bench http`.
//
// Hummingbird is pinned exactly: the benchmark numbers were measured with it.
import PackageDescription

let package = Package(
    name: "swift-iopool-hummingbird",
    products: [
        .library(name: "IOPoolHummingbird", targets: ["IOPoolHummingbird"]),
        .executable(name: "hummingbird-bench-server", targets: ["hummingbird-bench-server"]),
    ],
    dependencies: [
        .package(name: "swift-iopool", path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "IOPoolHummingbird",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "IOPool", package: "swift-iopool"),
                .product(name: "IOPoolHTTP", package: "swift-iopool"),
                .product(name: "IOPoolServiceLifecycle", package: "swift-iopool"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "hummingbird-bench-server",
            dependencies: [
                "IOPoolHummingbird",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "IOPool", package: "swift-iopool"),
                .product(name: "IOPoolServiceLifecycle", package: "swift-iopool"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "IOPoolHummingbirdTests",
            dependencies: [
                "IOPoolHummingbird",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "IOPool", package: "swift-iopool"),
                .product(name: "IOPoolHTTP", package: "swift-iopool"),
                .product(name: "IOPoolServiceLifecycle", package: "swift-iopool"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
