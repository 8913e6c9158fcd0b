// swift-tools-version:5.9
// BMSDK: run bmsdk artifacts (bmsdk.json + model.mlpackage) on iOS/macOS. Pure Swift and Foundation, so the
// tokenizer and pre/post-processing build and test on Linux too; CoreML prediction compiles where CoreML exists.
import PackageDescription

let package = Package(
    name: "BMSDK",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [.library(name: "BMSDK", targets: ["BMSDK"])],
    targets: [
        .target(name: "BMSDK", path: "Sources/BMSDK"),
        .testTarget(name: "BMSDKTests", dependencies: ["BMSDK"], path: "Tests/BMSDKTests",
                    resources: [.copy("Fixtures")]),
    ]
)
