// swift-tools-version:6.0
import PackageDescription

import Foundation

// Numerics are compiled without bounds checks in every configuration (the hot loops index raw
// buffers whose sizes are checked once, at the API boundary) and for the building machine's
// vector unit, like -march=native: without FMA, SIMD `addProduct` becomes a libm call per lane.
// CODERL_TARGET_CPU overrides the detection: a CPU name (haswell, skylake-avx512, ...) or
// `generic` for none; images built for other machines set it (Docker/Dockerfile: haswell).
let hostCPU: String? = {
    if let chosen = ProcessInfo.processInfo.environment["CODERL_TARGET_CPU"], !chosen.isEmpty {
        return chosen == "generic" ? nil : chosen
    }
    #if arch(x86_64)
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
    if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "skylake-avx512" }
    if flags.isSuperset(of: ["avx2", "fma", "f16c"]) { return "haswell" }
    #endif
    return nil
}()
let fastMath: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"] + (hostCPU.map { ["-target-cpu", $0] } ?? []))]

let package = Package(
    name: "CodeRL",
    platforms: [.macOS(.v14)],
    products: [
        // The command-line tool and the pipeline's five role binaries.
        .executable(name: "coderl", targets: ["CodeRLCommand"]),
        .executable(name: "coderl-executor", targets: ["coderl-executor"]),
        .executable(name: "coderl-param-store", targets: ["coderl-param-store"]),
        .executable(name: "coderl-sampler", targets: ["coderl-sampler"]),
        .executable(name: "coderl-critic-labeler", targets: ["coderl-critic-labeler"]),
        .executable(name: "coderl-learner", targets: ["coderl-learner"]),
        .library(name: "Llama", targets: ["Llama"]),
        .library(name: "LMDB", targets: ["LMDB"]),
        .library(name: "Ledger", targets: ["Ledger"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "ModelIO", targets: ["ModelIO"]),
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "Optim", targets: ["Optim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System libraries: a module map and a one-line shim header each.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ"),
        .systemLibrary(name: "CLMDB", path: "Sources/CLMDB"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

        .target(name: "CIntrinsics", path: "Sources/CIntrinsics"),
        .target(name: "Tensor", dependencies: ["CBLAS", "CIntrinsics"], swiftSettings: fastMath),
        .target(name: "LMDB", dependencies: ["CLMDB"]),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        // Generated from Sources/Schema/proto by scripts/generate-schema.sh; committed.
        .target(
            name: "Schema",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["proto"],
            // Generated message storage is a class; dynamic exclusivity checks on its fields
            // cost ~10% of replay decoding and guard nothing the generated code can violate.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        .target(name: "Wire", dependencies: ["Schema", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "Datasets", dependencies: ["Schema", "CZlib"]),
        .target(name: "Ledger", dependencies: ["LMDB", "Schema", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // The executor: sandboxed slots running the embedded Python harness (harness.py).
        .target(name: "CProcess"),
        .target(name: "Execution", dependencies: ["CProcess", "Datasets", "Schema"], resources: [.embedInCode("harness.py")]),
        .target(name: "ExecutorService", dependencies: ["Execution", "Ledger", "Runtime", "Schema", "Wire", "ZeroMQ"]),
        .target(name: "SandboxOptions", dependencies: ["Execution", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "coderl-executor", dependencies: [
            "Execution", "ExecutorService", "SandboxOptions", "ZeroMQ", "Runtime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "ModelIO", dependencies: ["Tensor"], swiftSettings: fastMath),
        .target(name: "Llama", dependencies: ["Tensor", "ModelIO", "CIntrinsics"], swiftSettings: fastMath),
        .target(name: "Optim", dependencies: ["Tensor"], swiftSettings: fastMath),
        // Training sessions, checkpoints and model export (on Llama, Optim and ModelIO).
        .target(name: "Training", dependencies: ["Llama", "Optim", "ModelIO", "Schema", "Tensor"]),
        // CodeRL's method: rewards, returns, prompts, the package's own problems.
        .target(name: "CodeRL", dependencies: ["Schema", "ModelIO", "Datasets"], resources: [.copy("Resources/basic-problems.jsonl")]),
        // Configuration files (YAML), process supervision, logs (swift-log) and metrics
        // (swift-metrics with the Prometheus exporter, served over HTTP with swift-nio).
        .target(name: "Runtime", dependencies: [
            .product(name: "Yams", package: "Yams"), .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"), .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The pipeline roles as services: param-store, sampler, critic-labeler, learner.
        .target(name: "Pipeline", dependencies: [
            "CodeRL", "Runtime", "Llama", "ModelIO", "Training", "Optim", "Tensor", "Datasets", "Execution", "Ledger", "Schema", "Wire", "ZeroMQ",
        ]),
        // coderl eval: pass@k, n@k and critical sampling.
        .target(name: "Evaluation", dependencies: ["CodeRL", "Runtime", "Llama", "ModelIO", "Optim", "Tensor", "Training", "Execution", "Ledger", "Schema", "Pipeline", "Wire", "ZeroMQ"]),
        .executableTarget(name: "coderl-param-store", dependencies: ["Pipeline", "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "coderl-sampler", dependencies: ["Pipeline", "Runtime", "Tensor", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "coderl-critic-labeler", dependencies: ["Pipeline", "Runtime", "Tensor", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "coderl-learner", dependencies: ["Pipeline", "Runtime", "Tensor", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // `coderl` (its folder is not Sources/coderl: that would be Sources/CodeRL on a
        // case-insensitive disk).
        .executableTarget(
            name: "CodeRLCommand",
            dependencies: [
                "Llama", "ModelIO", "Optim", "Training", "Tensor", "Datasets", "Execution", "ExecutorService", "SandboxOptions", "Ledger", "Schema", "LMDB", "Wire", "ZeroMQ",
                "CodeRL", "Runtime", "Pipeline", "Evaluation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            // PyTorch's side of `coderl bench peers`.
            resources: [.embedInCode("torch_train.py")]),

        // Starting the package's executables and other programs from tests.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "ModelIOTests", dependencies: ["ModelIO", "Tensor"]),
        .testTarget(name: "LlamaTests", dependencies: ["Llama", "ModelIO", "Tensor"]),
        .testTarget(name: "TrainingTests", dependencies: ["Llama", "Optim", "ModelIO", "Training", "Tensor", "TestSupport"]),
        .testTarget(name: "LMDBTests", dependencies: ["LMDB"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "Schema"]),
        .testTarget(name: "SchemaTests", dependencies: ["Schema"]),
        .testTarget(name: "CLITests", dependencies: ["CodeRL", "Ledger", "ModelIO", "Schema", "TestSupport", "Wire", "ZeroMQ"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Schema"]),
        .testTarget(name: "ExecutionTests", dependencies: ["Execution", "ExecutorService", "Datasets", "Ledger", "LMDB", "Schema", "Wire", "ZeroMQ"]),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "LMDB", "Schema", "TestSupport"]),
        // Child process of the ledger crash-safety test (killed with SIGKILL).
        .executableTarget(name: "LedgerStress", dependencies: ["Ledger", "Schema"], path: "Tests/Helpers/LedgerStress"),
        .testTarget(name: "PipelineTests", dependencies: [
            "CodeRL", "Evaluation", "Runtime", "Pipeline", "Llama", "ModelIO", "Optim", "Tensor", "Training", "Execution", "ExecutorService", "Ledger", "Schema", "TestSupport", "Wire", "ZeroMQ",
        ]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CBLAS", "CZeroMQ", "CLMDB"]),
    ]
)
