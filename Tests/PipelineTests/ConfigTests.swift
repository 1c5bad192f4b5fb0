import Runtime
import XCTest

final class ConfigTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "coderl-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// CODERL_FAILPOINTS (the fault tests' pauses): valid items are kept, every other one is
    /// named in a message and left out.
    func testFailpointSettingsAreParsedAndBadItemsNamed() {
        var complaints: [String] = []
        let pauses = Failpoint.parse("checkpoint-written=6000@2, delta-materialized=10,bogus=5,weights-applying=x,weights-applying=5@0,=3,weights-applying",
                                     complain: { complaints.append($0) })
        XCTAssertEqual(pauses.count, 2)
        XCTAssertEqual(pauses["checkpoint-written"]?.ms, 6000)
        XCTAssertEqual(pauses["checkpoint-written"]?.at, 2)
        XCTAssertEqual(pauses["delta-materialized"]?.ms, 10)
        XCTAssertEqual(pauses["delta-materialized"]?.at, 1)
        XCTAssertEqual(complaints.count, 5, "\(complaints)")
        XCTAssertTrue(complaints[0].contains("'bogus=5'") && complaints[0].contains("checkpoint-written, delta-materialized, weights-applying"), complaints[0])
        XCTAssertTrue(Failpoint.parse("", complain: { XCTFail($0) }).isEmpty)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func errors(_ files: [String], _ sets: [String] = []) -> [ConfigError] {
        do {
            _ = try PipelineConfig.load(files: files, assignments: sets)
            return []
        } catch let e as ConfigErrors {
            return e.errors
        } catch let e as ConfigError {
            return [e]
        } catch {
            XCTFail("unexpected \(error)")
            return []
        }
    }

    func testLayersOverrideInOrderAndIncludesAreRelativeToTheirFile() throws {
        _ = try write("Configs/base.yaml", "training:\n  learning_rate: 1.0e-4\n  problems_per_step: 8\nsampling:\n  temperature: 0.5\n")
        let pipeline = try write("Pipelines/p.yaml", "config: ../Configs/base.yaml\ntraining:\n  problems_per_step: 2\n")
        let extra = try write("extra.yaml", "sampling:\n  temperature: 0.9\n")
        let (config, values) = try PipelineConfig.load(files: [pipeline, extra], assignments: ["run.steps=7", "data.sources=[builtin, x.jsonl]"])
        XCTAssertEqual(config.training.learningRate, 1e-4)        // from the base
        XCTAssertEqual(config.training.problemsPerStep, 2)         // the pipeline file wins over its base
        XCTAssertEqual(config.sampling.temperature, 0.9)           // --config wins over the pipeline
        XCTAssertEqual(config.run.steps, 7)                        // --set wins over all
        XCTAssertEqual(config.data.sources, ["builtin", "x.jsonl"])
        XCTAssertEqual(config.training.ceWeight, 1.0)              // default
        XCTAssertEqual(values["training.problems_per_step"]?.source.line, 3)
        XCTAssertEqual(config.rolloutsPerStep, 2 * (4 + 1))
    }

    func testErrorsNameFileLineAndKey() throws {
        let path = try write("bad.yaml", """
            run:
              steps: many
            training:
              learning_rat: 0.1
              micro_batch: 0
            sampling:
              baseline: best
            """)
        let found = errors([path])
        let text = found.map(\.description)
        XCTAssertEqual(found.count, 4, "\(text)")
        XCTAssertTrue(text.contains("\(path):2: run.steps: expected a whole number, found 'many'"), "\(text)")
        XCTAssertTrue(text.contains("\(path):5: training.micro_batch: must be at least 1, found 0"), "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("\(path):7: sampling.baseline: 'best' is not one of greedy, group-mean") }, "\(text)")
        XCTAssertTrue(text.contains("\(path):4: training.learning_rat: unknown key (did you mean training.learning_rate?)"), "\(text)")
    }

    func testMalformedYAMLAndMissingFiles() throws {
        let path = try write("broken.yaml", "training:\n  micro_batch: [1, 2\n")
        let e = errors([path])
        XCTAssertEqual(e.count, 1)
        XCTAssertEqual(e.first?.file, path)
        XCTAssertGreaterThan(e.first?.line ?? 0, 1)
        XCTAssertTrue(e.first?.reason.hasPrefix("not valid YAML") ?? false)
        let including = try write("inc.yaml", "config: nowhere.yaml\n")
        XCTAssertEqual(errors([including]).first?.description, "\(including):1: config: no such file: \(dir!)/nowhere.yaml")
        let loop = try write("loop.yaml", "config: loop.yaml\n")
        XCTAssertTrue(errors([loop]).first?.reason.contains("includes itself") ?? false)
        XCTAssertTrue(errors([dir + "/absent.yaml"]).first?.reason.contains("cannot read") ?? false)
        let list = try write("list.yaml", "- a\n- b\n")
        XCTAssertEqual(errors([list]).first?.reason, "expected a mapping of keys at the top level")
    }

    func testImpossibleCombinationsAreRefused() throws {
        let path = try write("c.yaml", """
            training:
              requests_ahead: 3
              max_policy_lag: 1
              ce_weight: 0
              rl_weight: 0
            sampling:
              baseline: group-mean
              samples_per_problem: 1
            endpoints:
              samples: tcp://127.0.0.1:5701
            """)
        let text = errors([path]).map(\.description).joined(separator: "\n")
        XCTAssertTrue(text.contains("\(path):2: training.requests_ahead"), text)
        XCTAssertTrue(text.contains("sampling.baseline: a group-mean baseline needs at least 2 samples"), text)
        XCTAssertTrue(text.contains("both 0"), text)
        XCTAssertTrue(text.contains("endpoints.samples: 'tcp://127.0.0.1:5701' is also endpoints.params"), text)
        XCTAssertEqual(errors([path], ["training.bogus=1"]).last?.description, "--set training.bogus=1: training.bogus: unknown key")
        XCTAssertEqual(errors([], ["no-equals"]).first?.reason, "expected key=value")
        XCTAssertEqual(errors([], ["data.heldout_points=[before, later]"]).map(\.reason), ["'later' is not one of before, warm, after"])
        XCTAssertTrue(errors([], ["data.heldout_points=[after]", "training.curriculum=frontier"]).isEmpty)
    }

    func testEveryKeyHasHelpAndTheResolvedFileReadsBackTheSame() throws {
        let keys = PipelineConfig.reference
        XCTAssertGreaterThan(keys.count, 50)
        XCTAssertEqual(Set(keys.map(\.key)).count, keys.count, "a key is read twice")
        for k in keys { XCTAssertFalse(k.help.isEmpty, k.key) }
        let path = try write("p.yaml", "training:\n  learning_rate: 3.0e-5\ndata:\n  sources: [builtin, \"a b.jsonl\"]\nmodel:\n  actor: \"x: y.gguf\"\n")
        let (config, values) = try PipelineConfig.load(files: [path], assignments: ["run.dir=/tmp/r"])
        let resolved = try write("resolved.yaml", values.yaml(header: "test"))
        let (again, _) = try PipelineConfig.load(files: [resolved])
        XCTAssertEqual(again.training.learningRate, config.training.learningRate)
        XCTAssertEqual(again.data.sources, ["builtin", "a b.jsonl"])
        XCTAssertEqual(again.model.actor, "x: y.gguf")
        XCTAssertEqual(again.run.directory, "/tmp/r")
    }

    /// The configuration reference (Sources/Pipeline/Pipeline.docc/Configuration.md) lists
    /// every key with its default.
    func testTheDocumentedReferenceListsEveryKey() throws {
        let page = "Sources/Pipeline/Pipeline.docc/Configuration.md"
        let text = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../" + page).standardizedFileURL.path, encoding: .utf8)
        for k in PipelineConfig.reference {
            let value = k.defaultValue.isEmpty ? "(empty)" : k.defaultValue
            XCTAssertTrue(text.contains("| `\(k.key)` | `\(value)` |"), "\(page): no row for \(k.key) = \(value) (regenerate from `coderl run --print-keys`)")
        }
    }
}
