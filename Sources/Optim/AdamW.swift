import Foundation
import Tensor

/// A contiguous run of parameters in a flat buffer, and whether weight decay applies to it.
public struct ParameterRange: Sendable, Equatable, Codable {
    public var offset: Int
    public var count: Int
    public var decays: Bool
    public init(offset: Int, count: Int, decays: Bool) {
        self.offset = offset
        self.count = count
        self.decays = decays
    }
}

public struct AdamWSettings: Sendable, Equatable, Codable {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public init(beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// AdamW (Loshchilov & Hutter) exactly as PyTorch's `torch.optim.AdamW` computes it:
///
///     p ← p (1 - lr λ)                       (decoupled decay, decaying ranges only)
///     m ← β1 m + (1 - β1) g ;  v ← β2 v + (1 - β2) g²
///     p ← p - lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)
///
/// The moments cover the ranges given at creation (the trained parameters) and live in one
/// buffer each, indexed like the parameters minus `base`.
public final class AdamW: @unchecked Sendable {  // confined to the learner's thread
    public let settings: AdamWSettings
    public let ranges: [ParameterRange]
    /// Parameter offset of moment index 0.
    public let base: Int
    public let m: FloatBuffer
    public let v: FloatBuffer
    public private(set) var step = 0

    public init(ranges: [ParameterRange], settings: AdamWSettings = AdamWSettings()) {
        self.settings = settings
        self.ranges = ranges
        base = ranges.map(\.offset).min() ?? 0
        let end = ranges.map { $0.offset + $0.count }.max() ?? 0
        m = FloatBuffer(count: end - base)
        v = FloatBuffer(count: end - base)
    }

    /// Restores moments and step (from a checkpoint).
    public func restore(step: Int) { self.step = step }

    /// One update of `parameters` from `gradients` (both indexed by parameter offset), the
    /// gradients multiplied by `gradientScale` first (clipping folded into the same pass).
    public func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate lr: Float,
                       gradientScale: Float = 1) {
        step += 1
        let b1 = settings.beta1, b2 = settings.beta2
        let bc1 = 1 - Float(pow(Double(b1), Double(step)))
        let bc2Root = Float(sqrt(1 - pow(Double(b2), Double(step))))
        let stepSize = lr / bc1, eps = settings.epsilon
        for r in ranges {
            let decay: Float = r.decays ? 1 - lr * settings.weightDecay : 1
            let p = parameters + r.offset, g = gradients + r.offset
            let mp = m.pointer + (r.offset - base), vp = v.pointer + (r.offset - base)
            let body = { (lo: Int, hi: Int) in
                for i in lo..<hi {
                    let gi = g[i] * gradientScale
                    let mi = b1 * mp[i] + (1 - b1) * gi
                    let vi = b2 * vp[i] + (1 - b2) * gi * gi
                    mp[i] = mi
                    vp[i] = vi
                    p[i] = p[i] * decay - stepSize * mi / (vi.squareRoot() / bc2Root + eps)
                }
            }
            if r.count < 1 << 16 {
                body(0, r.count)
            } else {
                ComputePool.shared.run { part, parts in
                    let span = ComputePool.range(part, of: parts, count: r.count, align: 16)
                    body(span.lowerBound, span.upperBound)
                }
            }
        }
    }
}

/// Global L2 norm of the gradients over `ranges`: each block of 4096 values summed in float,
/// the blocks' sums added in double in order, so the norm (and whether and how much a step is
/// clipped) is the same whatever the number of threads that split the blocks.
public func gradientNorm(_ gradients: UnsafePointer<Float>, ranges: [ParameterRange]) -> Double {
    let block = 4096
    var total = 0.0
    for r in ranges {
        let blocks = (r.count + block - 1) / block
        var sums = [Double](repeating: 0, count: blocks)
        sums.withUnsafeMutableBufferPointer { out in
            let sp = out.baseAddress!
            let body = { (blockRange: Range<Int>) in
                for b in blockRange {
                    let start = b * block, n = min(block, r.count - start)
                    sp[b] = Double(Kernels.dot(gradients + r.offset + start, gradients + r.offset + start, n))
                }
            }
            if blocks < 16 {
                body(0..<blocks)
            } else {
                ComputePool.shared.run { part, parts in body(ComputePool.range(part, of: parts, count: blocks)) }
            }
        }
        for s in sums { total += s }
    }
    return total.squareRoot()
}

/// The factor `clipGradients` would scale by: maxNorm / (norm + 1e-6) when norm > maxNorm, else 1.
public func clipFactor(norm: Double, maxNorm: Double) -> Float {
    norm > maxNorm ? Float(maxNorm / (norm + 1e-6)) : 1
}

/// Scales the gradients so their global norm is at most `maxNorm` (as
/// `torch.nn.utils.clip_grad_norm_`: factor maxNorm / (norm + 1e-6) when norm > maxNorm).
/// Returns the norm before clipping.
@discardableResult
public func clipGradients(_ gradients: UnsafeMutablePointer<Float>, ranges: [ParameterRange], maxNorm: Double) -> Double {
    let norm = gradientNorm(gradients, ranges: ranges)
    if norm > maxNorm {
        let factor = clipFactor(norm: norm, maxNorm: maxNorm)
        for r in ranges {
            let p = gradients + r.offset
            for i in 0..<r.count { p[i] *= factor }
        }
    }
    return norm
}
