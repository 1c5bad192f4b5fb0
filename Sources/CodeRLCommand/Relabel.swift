import ArgumentParser
import CodeRL
import Execution
import Foundation
import Runtime
import Ledger
import Llama
import Pipeline
import SandboxOptions
import Training

/// `coderl relabel`: new critic weights (and optionally verdicts) for stored rollouts.
struct Relabel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute critic weights of stored rollouts with another critic, optionally re-executing their programs.",
        discussion: """
            --critic takes a critic version number of the run (read from RUN/weights/critic/ beside \
            the ledger) or a critic checkpoint file (a version file, or critic.safetensors of a \
            learner checkpoint). With --reexecute every stored program is run again against its \
            problem's current hidden tests in a local sandbox, and rewards and returns follow the \
            new verdicts. Rollouts are changed in place, one group per transaction; their \
            lifecycle state is kept. Do not run it on a ledger a pipeline is using.

            Examples:
              coderl relabel --ledger runs/demo/ledger --critic 7
              coderl relabel --ledger runs/demo/ledger \\
                  --critic runs/other/learner/step-000010/critic.safetensors --reexecute
            """)

    @Option(help: "The ledger (a run's RUN/ledger directory).") var ledger: String
    @Option(help: "Critic version number of this run, or a critic checkpoint file.") var critic: String?
    @Flag(help: "Run the stored programs again against the current hidden tests.") var reexecute = false
    @Option(help: "Return: relative (to the group's baseline) or absolute.") var `return`: String = "relative"
    @Option(help: "Baseline of relative returns: greedy or group-mean.") var baseline: String = "greedy"
    @Option(help: "Reward: coderl (graded outcomes) or pass (1 passed, 0 otherwise).") var reward: String = "coderl"
    @Option(help: "First rollout sequence.") var fromSeq: UInt64 = 1
    @Option(help: "Last rollout sequence (default: the ledger's last).") var toSeq: UInt64?
    @OptionGroup var sandbox: SandboxOptionsGroup

    func validate() throws {
        if let toSeq, toSeq < fromSeq { throw ValidationError("--to-seq \(toSeq) is before --from-seq \(fromSeq)") }
        guard critic != nil || reexecute else { throw ValidationError("give --critic, --reexecute, or both") }
        guard Rewards.ReturnMode(rawValue: `return`) != nil else { throw ValidationError("--return must be relative or absolute") }
        guard Rewards.Baseline(rawValue: baseline) != nil else { throw ValidationError("--baseline must be greedy or group-mean") }
        guard Rewards.Scheme(rawValue: reward) != nil else { throw ValidationError("--reward must be coderl or pass") }
    }

    func run() throws {
        var relabeler = Relabeler()
        relabeler.returnMode = Rewards.ReturnMode(rawValue: `return`)!
        relabeler.baseline = Rewards.Baseline(rawValue: baseline)!
        relabeler.reward = Rewards.Scheme(rawValue: reward)!
        if let critic {
            var path = critic
            if let version = UInt64(critic) {
                let runDir = (URL(fileURLWithPath: ledger).standardizedFileURL.deletingLastPathComponent().path)
                path = runDir + String(format: "/weights/critic/v%06llu.safetensors", version)
                guard FileManager.default.fileExists(atPath: path) else {
                    throw CLIError("critic version \(version) is not in \(runDir)/weights/critic/ (the param-store keeps the newest few); give a checkpoint file instead")
                }
            }
            relabeler.critic = try CriticTrainer(critic: try Critic.load(checkpoint: path), trainedLayers: 1)
            print("critic: \(path)")
        }
        if reexecute {
            relabeler.executor = try Executor(slots: 1, configuration: sandbox.configuration, name: "relabel")
            relabeler.limits = sandbox.limits
        }
        let store = try Ledger(path: ledger)
        let started = Date()
        let progress = ProgressLine(total: 0, plainInterval: 10)
        let summary = try relabeler.run(ledger: store, range: fromSeq...(toSeq ?? .max)) { done in
            progress.update(done: done, unit: "rollouts", detail: reexecute ? "relabeled and re-executed" : "relabeled")
        }
        progress.finish()
        print(String(format: "relabeled %d rollouts in %d groups in %.1f s; re-executed %d (%d verdicts changed, %d infrastructure errors kept the old verdict)",
                     summary.rollouts, summary.groups, Date().timeIntervalSince(started), summary.reexecuted, summary.changedVerdicts, summary.infrastructureErrors))
    }
}
