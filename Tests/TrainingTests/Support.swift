import Foundation
import Llama
import ModelIO
import Tensor
import XCTest

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let tinyTrain = root.appendingPathComponent("tiny_llama_train").path
}

/// Relative error of `a` against the reference `b`: max|a - b| / max|b| (0 when both are 0).
func relativeError(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
    var diff = 0.0, scale = 0.0
    for i in 0..<count {
        diff = max(diff, Double(abs(a[i] - b[i])))
        scale = max(scale, Double(abs(b[i])))
    }
    return scale == 0 ? diff : diff / scale
}

func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    return a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in relativeError(pa.baseAddress!, pb.baseAddress!, count: a.count) } }
}

/// A small random Llama for gradient checks (weights uniform in ±scale, norms near 1).
func randomWeights(_ config: LlamaConfig, seed: UInt64, scale: Float = 0.3) -> LlamaWeights {
    let w = LlamaWeights(config: config)
    var rng = Xoshiro256(seed: seed)
    for t in w.namedTensors {
        for i in 0..<t.count {
            let u = rng.nextUnit() * 2 - 1
            w.buffer[t.offset + i] = t.decays ? u * scale : 1 + 0.2 * u
        }
    }
    return w
}

func randomTokens(_ count: Int, vocabulary: Int, rng: inout Xoshiro256) -> [Int] {
    (0..<count).map { _ in Int(rng.next() % UInt64(vocabulary)) }
}

/// Compares `analytic[i]` with (L(v+h) - L(v-h)) / 2h at `samples` indices of `values`.
func checkGradient(_ name: String, _ values: UnsafeMutablePointer<Float>, count: Int, analytic: UnsafePointer<Float>,
               samples: Int, step h: Float, tolerance: Double, rng: inout Xoshiro256,
               file: StaticString = #filePath, line: UInt = #line, loss: () -> Double) {
    var indices = Array(0..<count)
    if count > samples {
        indices = (0..<samples).map { _ in Int(rng.next() % UInt64(count)) }
    }
    var worst = 0.0, scale = 1e-6
    for i in indices {
        let v = values[i]
        values[i] = v + h
        let up = loss()
        values[i] = v - h
        let down = loss()
        values[i] = v
        let numeric = (up - down) / Double(2 * h)
        worst = max(worst, abs(numeric - Double(analytic[i])))
        scale = max(scale, abs(numeric))
    }
    XCTAssertLessThan(worst / scale, tolerance, "\(name): finite differences disagree (max error \(worst), largest gradient \(scale))",
                      file: file, line: line)
}

