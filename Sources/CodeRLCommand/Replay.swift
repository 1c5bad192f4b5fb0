import ArgumentParser
import Foundation
import Ledger
import Pipeline
import Runtime

/// `coderl replay`: a learner trained from stored rollouts, nothing else running.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a learner from rollouts stored in a ledger, with no sampler or executor running.",
        discussion: """
            Starts from the configured model and seed, reads labeled train rollouts in sequence \
            order (from --from-seq to --to-seq), and trains exactly as the online learner does \
            (same steps, losses, stale rule), without changing the ledger. Writes the final actor \
            and critic checkpoints under OUT/learner/ and prints their SHA-256: two replays of the \
            same rollouts with the same configuration give bit-identical weights.

            Examples:
              coderl replay --ledger runs/demo/ledger --config runs/demo/pipeline.yaml \\
                  --out runs/replay-1
              coderl replay --ledger runs/demo/ledger --config runs/demo/pipeline.yaml \\
                  --set training.critic_weights=false --out runs/ablation
            """)

    @Option(help: "The ledger (a run's RUN/ledger directory).") var ledger: String
    @Option(name: .customLong("config"), help: "Configuration files (e.g. the run's RUN/pipeline.yaml); later ones win.") var configFiles: [String] = []
    @Option(name: .customLong("set"), help: "Override one key (repeatable).") var assignments: [String] = []
    @Option(help: "First rollout sequence to read.") var fromSeq: UInt64 = 1
    @Option(help: "Last rollout sequence to read (default: the ledger's last).") var toSeq: UInt64?
    @Option(help: "Output run directory (must not hold a learner checkpoint).") var out: String

    func validate() throws {
        if let toSeq, toSeq < fromSeq { throw ValidationError("--to-seq \(toSeq) is before --from-seq \(fromSeq)") }
    }

    func run() throws {
        let config: PipelineConfig
        do {
            config = try PipelineConfig.load(files: configFiles, assignments: assignments + ["run.dir=\(out)"]).0
        } catch {
            throw CLIError("configuration errors:\n\(error)")
        }
        let store = try Ledger.openForReading(path: ledger)
        let progress = ProgressLine(total: 0, plainInterval: 30)
        var steps = 0
        let learner = try LearnerService(config: config, log: Log(role: "replay", instance: "0"), ledger: store) { line in
            progress.note(line)
            if line.hasPrefix("step ") {
                steps += 1
                progress.update(done: steps, unit: "steps", detail: "replaying \(ledger)")
            }
        }
        let result = try learner.replay(from: fromSeq, to: toSeq ?? .max)
        progress.finish()
        print("replayed \(result.steps) steps on rollouts \(result.firstSequence)...\(result.lastSequence)")
        print("actor  sha256 \(result.actorSHA256)")
        print("critic sha256 \(result.criticSHA256)")
        print("checkpoint \(result.checkpoint)")
    }
}
