import ArgumentParser
import Foundation
import Tensor

@main
struct CodeRL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coderl",
        abstract: "CodeRL in Swift: reinforcement learning of code models from unit tests.",
        subcommands: [Run.self, Eval.self, Evals.self, TrainCritic.self, Replay.self, Relabel.self, Generate.self, Import.self, Exec.self, SFT.self, Export.self, Rollouts.self, Report.self, Bench.self])

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
        subcommands: [BenchGenerate.self, BenchTrain.self, BenchLedger.self, BenchWire.self, BenchExec.self])
}
