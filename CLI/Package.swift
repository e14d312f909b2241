// swift-tools-version: 6.1
//
// The `iopool` command-line tool (echo-server, http-server, load, bench), kept out of the root package so that
// a package depending on swift-iopool neither fetches nor builds swift-argument-parser (and its
// plugins): SwiftPM resolves every dependency a package's manifest names, whichever products a
// dependent uses. From the repository root:
//
//     swift run -c release --package-path CLI iopool bench
//     swift test --package-path CLI
//
// `iopool bench echo` compiles the C programs of Benchmarks/echo-baseline, found relative to the
// working directory: the repository root under `swift run`, but this folder under `swift test`
// (SwiftPM runs tests from the package root). CLI/Benchmarks/echo-baseline is a link to them, so
// that both find the same files.
//
// Separate from ../Benchmarks (SwiftNIO peers, ordo-one benchmarks): the README's main command and
// CI's counts gate build this package, and should not resolve SwiftNIO or the benchmark harness.
import PackageDescription

let package = Package(
    name: "swift-iopool-cli",
    products: [
        .executable(name: "iopool", targets: ["iopool"]),
    ],
    dependencies: [
        .package(name: "swift-iopool", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .executableTarget(
            name: "iopool",
            dependencies: [
                // CPU affinity and thread names for the benchmarks come from CIOPoolShims, which is
                // not a product: IOPool imports it publicly, so its module is visible here through
                // IOPool (as a C module of a dependency always is to Swift clients). Should IOPool
                // ever import it `internal`, `import CIOPoolShims` fails to compile, loudly.
                .product(name: "IOPool", package: "swift-iopool"),
                .product(name: "IOPoolServiceLifecycle", package: "swift-iopool"),
                // `iopool http-server`: the TechEmpower routes on IOPoolHTTP's server.
                .product(name: "IOPoolHTTP", package: "swift-iopool"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "iopoolTests",
            dependencies: [
                "iopool",
                .product(name: "IOPool", package: "swift-iopool"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
