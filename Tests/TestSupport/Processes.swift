import Foundation

// Starting the package's executables and other programs from tests, in one place for every
// test target.

/// The directory holding the built executables (coderl, executor, the roles, test helpers):
/// SwiftPM puts them beside the test bundle.
public var productsDirectory: URL {
    var products = Bundle.main.bundleURL
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        products = bundle.bundleURL.deletingLastPathComponent()
    }
    return products
}

/// The path of one of the package's executables.
public func productPath(_ tool: String) -> String { productsDirectory.appendingPathComponent(tool).path }

/// Starts a program; its standard output and error go to `output` (or are inherited).
/// `environment` adds to (or replaces keys of) this process's environment.
public func startProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                         directory: String? = nil, output: Pipe? = nil) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let output { process.standardOutput = output; process.standardError = output }
    try process.run()
    return process
}

/// Runs a program to its end: its exit status and everything it printed (standard output and
/// error together).
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       directory: String? = nil) throws -> (status: Int32, output: String) {
    let pipe = Pipe()
    let process = try startProcess(executable, arguments, environment: environment, directory: directory, output: pipe)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Starts one of the package's executables.
public func startCLI(_ tool: String, _ arguments: [String], output: Pipe? = nil, directory: String? = nil,
                     environment: [String: String] = [:]) throws -> Process {
    try startProcess(productPath(tool), arguments, environment: environment, directory: directory, output: output)
}

/// Runs one of the package's executables to its end. A missing executable is an error that
/// says how to build it.
public func runCLI(_ tool: String, _ arguments: [String], directory: String? = nil,
                   environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let path = productPath(tool)
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "\(path) is missing: `swift build` builds it with the tests"])
    }
    return try runProcess(path, arguments, environment: environment, directory: directory)
}
