// swift-tools-version: 6.1
// Issue 12: what the reads into the caller's storage cost per read (see README.md here).
import PackageDescription

let package = Package(
    name: "read-into-storage",
    dependencies: [.package(name: "swift-iopool", path: "../..")],
    targets: [.executableTarget(name: "ReadBench", dependencies: [.product(name: "IOPool", package: "swift-iopool")])],
    swiftLanguageModes: [.v6]
)
