import ArgumentParser
import Foundation
import Runtime
import Tensor

@main
struct CodeRL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coderl",
        abstract: "CodeRL in Swift: reinforcement learning of code models from unit tests.",
        discussion: """
            Every subcommand explains its options and gives examples: coderl help SUBCOMMAND.

            Examples:
              coderl run Pipelines/demo.yaml                         # a short real run
              # pass@k of the default model
              coderl eval --dataset humaneval --samples 10 --k 1,10
              coderl report --ledger runs/demo/ledger --out report.html
            """,
        version: CodeRLVersion.string,
        subcommands: [Run.self, Eval.self, Evals.self, TrainCritic.self, Replay.self, Relabel.self, Generate.self, Import.self, Exec.self, SFT.self, Export.self, Rollouts.self, Report.self, Keys.self, LedgerCommand.self, EvalCompare.self, Bench.self])

    static func main() {
        BLASCoreType.reexecIfNeeded()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed and memory against the reference figures.",
        discussion: """
            Each benchmark prints its figures next to the reference it is measured against.

            Examples:
              coderl bench generate
              coderl bench kernels --rows 1,16
              coderl bench train --batch 4 --length 256
              coderl bench ledger --count 100000
              coderl bench wire
              coderl bench exec --slots 2
            """,
        subcommands: [BenchGenerate.self, BenchKernels.self, BenchTrain.self, BenchPeers.self, BenchLedger.self, BenchWire.self, BenchExec.self, BenchPipeline.self])
}
