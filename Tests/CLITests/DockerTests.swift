import Foundation
import TestSupport
import XCTest

/// The container files agree with the package and with the pipeline they start.
final class DockerTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path

    func read(_ path: String) throws -> String { try String(contentsOfFile: root + "/" + path, encoding: .utf8) }

    func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(executable, arguments, directory: root)
    }

    /// Every executable product the package declares (the binaries' names) is copied into
    /// the image, and every executable target but the test helper is one of them.
    func testTheImageCarriesEveryExecutable() throws {
        let manifest = try read("Package.swift")
        func matches(_ pattern: String) throws -> [String] {
            try NSRegularExpression(pattern: pattern).matches(in: manifest, range: NSRange(manifest.startIndex..., in: manifest))
                .map { String(manifest[Range($0.range(at: 1), in: manifest)!]) }
        }
        let names = try matches(#"\.executable\(name: "([^"]+)""#)
        XCTAssertEqual(names.count, 6, "\(names)")
        let targets = try matches(#"\.executableTarget\(\s*name: "([^"]+)""#).filter { $0 != "LedgerStress" }
        let productTargets = try matches(#"\.executable\(name: "[^"]+", targets: \["([^"]+)"\]"#)
        XCTAssertEqual(Set(targets), Set(productTargets), "an executable target without a product gets no binary name of ours")
        let dockerfile = try read("Docker/Dockerfile")
        guard let line = dockerfile.split(separator: "\n").first(where: { $0.contains("for tool in") }) else {
            return XCTFail("Docker/Dockerfile copies no executables")
        }
        // The image is built for a CPU family, not for whatever machine happens to build it.
        XCTAssertTrue(dockerfile.contains("ENV CODERL_TARGET_CPU="), "the build stage must pin CODERL_TARGET_CPU")
        XCTAssertTrue(manifest.contains("environment[\"CODERL_TARGET_CPU\"]"))
        let copied = line.components(separatedBy: "for tool in ")[1].components(separatedBy: ";")[0].split(separator: " ").map(String.init)
        XCTAssertEqual(Set(copied), Set(names))
        // Sources, tests (the manifest names them) and the model script reach the build context.
        let ignore = try read("Docker/Dockerfile.dockerignore")
        for path in ["Package.swift", "Sources", "Tests", "scripts/fetch-model.sh", "Pipelines", "Configs"] {
            XCTAssertTrue(ignore.contains("!" + path), "Docker/Dockerfile.dockerignore keeps \(path) out of the build")
        }
    }

    /// The compose file is valid for Docker's own client, and its executors connect where the
    /// head's pipeline binds them, with no executor inside the head.
    func testTheComposeFileIsValidAndMatchesTheHeadsPipeline() throws {
        let candidates: [(String, [String])] = [("/usr/bin/docker", ["compose"]), ("/usr/local/bin/docker", ["compose"]),
                                                ("/usr/bin/docker-compose", []), ("/usr/local/bin/docker-compose", [])]
        var validated = ""
        for (tool, prefix) in candidates where FileManager.default.isExecutableFile(atPath: tool) {
            if prefix == ["compose"], try run(tool, ["compose", "version"]).status != 0 { continue }   // a client without the plugin
            let result = try run(tool, prefix + ["-f", "Docker/compose.yaml", "config"])
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains("tcp://head:5705"), result.output)
            XCTAssertTrue(result.output.contains("target: head") && result.output.contains("target: executor"), result.output)
            validated = tool
            break
        }
        if validated.isEmpty {
            print("DockerTests: no `docker compose` or `docker-compose` here; the compose file was checked by text only")
        }
        let compose = try read("Docker/compose.yaml")
        XCTAssertTrue(compose.contains("\"--connect\", \"tcp://head:5705\""))
        XCTAssertTrue(compose.contains("/opt/coderl/Pipelines/compose.yaml"))
        let pipeline = try read("Pipelines/compose.yaml")
        XCTAssertTrue(pipeline.contains("executors: tcp://*:5705"), pipeline)
        XCTAssertTrue(pipeline.contains("executors: 0"), pipeline)
        // The head's pipeline file is a valid configuration.
        let dry = try run(productPath("coderl"), ["run", "Pipelines/compose.yaml", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("1 sampler(s), 0 executor(s)"), dry.output)
        // bubblewrap in a container needs all three (Docker/check.sh found the last one: without
        // it the container's masked /proc paths stop bubblewrap mounting its own /proc).
        for option in ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"] {
            XCTAssertTrue(compose.contains("- " + option), "the executors need security_opt \(option)")
        }
        // The short run of Docker/check.sh sets keys the configuration knows, to values it accepts.
        let check = try read("Docker/compose.check.yaml")
        let settings = try NSRegularExpression(pattern: #""--set", "([^"]+)""#)
            .matches(in: check, range: NSRange(check.startIndex..., in: check))
            .flatMap { ["--set", String(check[Range($0.range(at: 1), in: check)!])] }
        XCTAssertGreaterThanOrEqual(settings.count, 10, check)
        let short = try run(productPath("coderl"), ["run", "Pipelines/compose.yaml", "--dry-run"] + settings)
        XCTAssertEqual(short.status, 0, short.output)
        XCTAssertTrue(short.output.contains("2 steps"), short.output)
    }
}

/// Every executable and subcommand explains itself with examples.
final class HelpTests: XCTestCase {
    func testEveryCommandHasHelpWithExamples() throws {
        func help(_ tool: String, _ arguments: [String]) throws -> String { try runCLI(tool, arguments + ["--help"]).output }
        // Subcommands as the root help lists them, one level down for groups.
        func subcommands(_ text: String) -> [String] {
            guard let part = text.components(separatedBy: "SUBCOMMANDS:").dropFirst().first?.components(separatedBy: "\n\n").first else { return [] }
            return part.split(separator: "\n").compactMap { line in
                guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
                return line.split(separator: " ").first.map(String.init)
            }.filter { $0 != "help" }
        }
        // In a pipe the help is wrapped at 80 columns: an example line that does not fit is
        // broken mid-command. Every line of an Examples block starts a command or a comment,
        // or continues one that ended in a backslash (or an open parenthesis).
        func assertExamplesFit(_ text: String, _ name: String) {
            guard let block = text.components(separatedBy: "Examples:").dropFirst().first?.components(separatedBy: "\n\n").first else { return }
            let starts = ["coderl", "#", "("]
            var previous = ""
            for line in block.split(separator: "\n").map(String.init) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                let body = line.trimmingCharacters(in: .whitespaces)
                let continued = previous.hasSuffix("\\") || previous.hasSuffix("(")
                XCTAssertTrue(continued || starts.contains { body.hasPrefix($0) }, "\(name) --help: an example broken mid-command: '\(line)' after '\(previous)'")
                XCTAssertLessThanOrEqual(line.count, 78, "\(name) --help: an example wider than 78 columns: '\(line)'")
                previous = body
            }
        }
        var checked = 0
        for tool in ["coderl-executor", "coderl-sampler", "coderl-param-store", "coderl-critic-labeler", "coderl-learner"] {
            let text = try help(tool, [])
            assertExamplesFit(text, tool)
            XCTAssertTrue(text.contains("Examples:"), "\(tool) --help has no examples")
            checked += 1
        }
        let root = try help("coderl", [])
        assertExamplesFit(root, "coderl")
        XCTAssertTrue(root.contains("Examples:"))
        let commands = subcommands(root)
        XCTAssertGreaterThanOrEqual(commands.count, 14, root)
        for command in commands {
            let text = try help("coderl", [command])
            assertExamplesFit(text, "coderl \(command)")
            XCTAssertTrue(text.contains("Examples:"), "coderl \(command) --help has no examples")
            XCTAssertTrue(text.contains("OPTIONS:") || text.contains("SUBCOMMANDS:"), "coderl \(command) --help")
            checked += 1
            for sub in subcommands(text) {
                let subText = try help("coderl", [command, sub])
                assertExamplesFit(subText, "coderl \(command) \(sub)")
                XCTAssertTrue(subText.contains("Examples:"), "coderl \(command) \(sub) --help has no examples")
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 30)
    }
}

extension DockerTests {
    /// Without an engine to build the image, the next best check: every shared library the
    /// built executables load (besides the Swift runtime, which the Swift base image carries,
    /// and the C library) comes from a Debian package the runtime stage installs.
    func testTheRuntimeStageInstallsEveryLibraryTheExecutablesLoad() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg"), FileManager.default.isExecutableFile(atPath: "/usr/bin/ldd") else {
            throw XCTSkip("no dpkg/ldd here: the runtime libraries cannot be traced to Debian packages")
        }
        let dockerfile = try read("Docker/Dockerfile")
        guard let stage = dockerfile.components(separatedBy: "AS runtime").dropFirst().first?.components(separatedBy: "\nFROM ").first else {
            return XCTFail("Docker/Dockerfile has no runtime stage")
        }
        let installed = Set(stage.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\\" }).map(String.init))
        let base: Set<String> = ["libc6", "libstdc++6", "libgcc-s1"]
        var traced = 0
        for tool in ["coderl", "coderl-executor", "coderl-sampler", "coderl-learner", "coderl-critic-labeler", "coderl-param-store"] {
            let binary = productPath(tool)
            let needed = try run("/usr/bin/readelf", ["-d", binary]).output.split(separator: "\n")
                .filter { $0.contains("(NEEDED)") }.compactMap { $0.split(separator: "[").last?.split(separator: "]").first.map(String.init) }
            let resolved = try run("/usr/bin/ldd", [binary]).output.split(separator: "\n")
            for library in needed where !library.hasPrefix("ld-linux") {   // the loader: part of libc6
                guard let line = resolved.first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(library + " ") }),
                      let path = line.components(separatedBy: "=> ").dropFirst().first?.split(separator: " ").first.map(String.init) else {
                    XCTFail("\(tool) needs \(library), which does not resolve here"); continue
                }
                if path.contains("/swift/") { continue }   // the Swift runtime: in the base image
                // dpkg knows a file by the path its package installed (merged /usr: /lib/... or /usr/lib/...).
                let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
                var owner = ""
                for candidate in [path, real, real.hasPrefix("/usr/") ? String(real.dropFirst(4)) : "/usr" + real] {
                    let answer = try run("/usr/bin/dpkg", ["-S", candidate])
                    if answer.status == 0 { owner = answer.output.split(separator: ":").first.map(String.init) ?? ""; break }
                }
                XCTAssertFalse(owner.isEmpty, "\(real): no Debian package owns it")
                XCTAssertTrue(base.contains(owner) || installed.contains(owner),
                              "\(tool) loads \(library) from \(owner), which the runtime stage does not install")
                traced += 1
            }
        }
        XCTAssertGreaterThanOrEqual(traced, 12)
    }
}
