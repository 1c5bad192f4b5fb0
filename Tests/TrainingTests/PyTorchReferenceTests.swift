import Foundation
import Llama
import ModelIO
import Optim
import Tensor
import XCTest

/// One training step of the tiny Llama in `Fixtures/tiny_llama_train` (PyTorch 2.15 +
/// transformers, fp32; `Fixtures/tiny_llama_train.py` made it): logits, both losses, every
/// gradient tensor and every parameter after one AdamW step, each matched to 1e-4 relative
/// (max |ours - theirs| / max |theirs| per tensor).
final class PyTorchReferenceTests: XCTestCase {
    struct Reference {
        let config: LlamaConfig
        let weights: LlamaWeights
        let batch: TrainingBatch
        let json: [String: Any]
    }

    static func loadReference(_ dir: String = Fixtures.tinyTrain) throws -> Reference {
        let config = try LlamaConfig(huggingFaceConfig: dir + "/config.json")
        let weights = try LlamaWeights(safetensors: try SafetensorsFile(path: dir + "/model.safetensors"), config: config)
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/reference.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let ids = try XCTUnwrap(json["input_ids"] as? [[Int]])
        let mask = try XCTUnwrap(json["attention_mask"] as? [[Int]])
        let w = try XCTUnwrap(json["token_weights"] as? [[Double]]).map { $0.map(Float.init) }
        // The reference scores exactly the positions with a nonzero weight (its ce_mask).
        let batch = try TrainingBatch(tokens: ids, keyMask: mask.map { $0.map { $0 != 0 } },
                                      lossMask: w.map { $0.map { $0 != 0 ? 1 : 0 } }, weights: w,
                                      vocabularySize: config.vocabularySize)
        return Reference(config: config, weights: weights, batch: batch, json: json)
    }

    func testConfigReadsRopeParameters() throws {
        let r = try Self.loadReference()
        XCTAssertEqual(r.config.vocabularySize, 320)
        XCTAssertEqual(r.config.channels, 64)
        XCTAssertEqual(r.config.kvHeads, 2)
        XCTAssertEqual(r.config.ropeTheta, 10_000)
        XCTAssertTrue(r.config.tiedEmbeddings)
    }

    func testLogitsMatchPyTorch() throws {
        try Self.checkLogits(Fixtures.tinyTrain)
    }

    func testLossesGradientsAndAdamWStepMatchPyTorch() throws {
        try Self.checkStep(Fixtures.tinyTrain)
    }

    static func checkLogits(_ dir: String) throws {
        let r = try loadReference(dir)
        let trainer = try LlamaTrainer(weights: r.weights)
        let ours = try trainer.logits(r.batch)
        let theirs = try SafetensorsFile(path: dir + "/logits.safetensors").array("logits")
        XCTAssertEqual(theirs.shape, [2, 12, 320])
        let err = relativeError(ours, theirs.values)
        print("logits relative error \(err)")
        XCTAssertLessThan(err, 1e-4)
    }

    static func checkStep(_ dir: String) throws {
        let r = try loadReference(dir)
        let trainer = try LlamaTrainer(weights: r.weights)
        trainer.zeroGradients()
        let losses = try trainer.forwardBackward(r.batch, mix: LossMix(crossEntropy: 1, weighted: 1))
        let loss = try XCTUnwrap(r.json["loss"] as? [String: Double])
        XCTAssertEqual(Double(losses.crossEntropy), loss["ce"]!, accuracy: 1e-4 * loss["ce"]!)
        XCTAssertEqual(Double(losses.weighted), loss["pg"]!, accuracy: 1e-4 * loss["pg"]!)

        let grads = try SafetensorsFile(path: dir + "/grads.safetensors")
        let norms = try XCTUnwrap(r.json["grad_norms"] as? [String: Double])
        XCTAssertEqual(Set(grads.names), Set(r.weights.namedTensors.map(\.name)))
        var worst = 0.0
        for t in r.weights.namedTensors {
            let ref = try grads.array(t.name)
            XCTAssertEqual(ref.shape, t.shape, t.name)
            let err = ref.values.withUnsafeBufferPointer {
                relativeError(trainer.gradients.buffer.pointer + t.offset, $0.baseAddress!, count: t.count)
            }
            worst = max(worst, err)
            XCTAssertLessThan(err, 1e-4, "gradient of \(t.name)")
            let norm = Kernels.dot(trainer.gradients.buffer.pointer + t.offset, trainer.gradients.buffer.pointer + t.offset, t.count).squareRoot()
            XCTAssertEqual(Double(norm), norms[t.name]!, accuracy: 1e-4 * norms[t.name]!, t.name)
        }
        print("worst gradient relative error \(worst)")

        let ranges = trainer.trainedTensors.map { ParameterRange(offset: $0.offset, count: $0.count, decays: $0.decays) }
        let total = gradientNorm(trainer.gradients.buffer.pointer, ranges: ranges)
        XCTAssertEqual(total, r.json["grad_norm_total"] as! Double, accuracy: 1e-4 * total)

        let adam = try XCTUnwrap(r.json["adamw"] as? [String: Any])
        let betas = try XCTUnwrap(adam["betas"] as? [Double])
        let opt = AdamW(ranges: ranges, settings: AdamWSettings(beta1: Float(betas[0]), beta2: Float(betas[1]),
                                                                 epsilon: Float(adam["eps"] as! Double),
                                                                 weightDecay: Float(adam["weight_decay"] as! Double)))
        // The optimizer is checked on PyTorch's own gradients: on its first step AdamW moves each
        // parameter by about lr * g / (|g| + eps), so elements whose gradient is near eps (1e-8)
        // amplify the last bits of any gradient difference; ours are checked above.
        let reference = LlamaWeights(config: r.config)
        for t in r.weights.namedTensors { try grads.read(t.name, shape: t.shape, into: reference.buffer.pointer + t.offset) }
        opt.update(parameters: r.weights.buffer.pointer, gradients: reference.buffer.pointer,
                   learningRate: Float(adam["lr"] as! Double))
        let after = try SafetensorsFile(path: dir + "/params_after_adamw.safetensors")
        for t in r.weights.namedTensors {
            let ref = try after.array(t.name)
            let err = ref.values.withUnsafeBufferPointer {
                relativeError(r.weights.buffer.pointer + t.offset, $0.baseAddress!, count: t.count)
            }
            XCTAssertLessThan(err, 1e-4, "parameters after AdamW: \(t.name)")
        }
    }
}
