// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-iopool",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "IOPool", targets: ["IOPool"]),
        .executable(name: "iopool", targets: ["iopool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The one C shim: a `_Thread_local` slot for "the IOThread running on this thread"
        // (one TLS load, as NIO's event_loop_id.c) and the CPU count honouring affinity.
        .target(name: "CIOPoolShims"),
        .target(
            name: "IOPool",
            dependencies: [
                "CIOPoolShims",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .executableTarget(
            name: "iopool",
            dependencies: [
                "IOPool",
                "CIOPoolShims",  // CPU affinity for the benchmarks
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "IOPoolTests", dependencies: ["IOPool"]),
        .testTarget(name: "iopoolTests", dependencies: ["iopool", "IOPool"]),
    ],
    swiftLanguageModes: [.v6]
)
