import Foundation

/// Learning rate per optimizer step (0-based): linear warm-up from 0 over `warmupSteps`, then
/// constant, cosine or linear decay to `minimumRatio * peak` at `totalSteps`, and flat after.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Decay: String, Sendable, Codable, CaseIterable { case constant, cosine, linear }

    public var peak: Float
    public var warmupSteps: Int
    public var decay: Decay
    public var totalSteps: Int
    public var minimumRatio: Float

    public init(peak: Float, warmupSteps: Int = 0, decay: Decay = .constant, totalSteps: Int = 0, minimumRatio: Float = 0) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.decay = decay
        self.totalSteps = totalSteps
        self.minimumRatio = minimumRatio
    }

    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let floor = peak * minimumRatio
        let span = totalSteps - warmupSteps
        guard decay != .constant, span > 0 else { return peak }
        let progress = min(1, Float(step - warmupSteps) / Float(span))
        switch decay {
        case .constant: return peak
        case .linear: return floor + (peak - floor) * (1 - progress)
        case .cosine: return floor + (peak - floor) * 0.5 * (1 + Float(cos(Double.pi * Double(progress))))
        }
    }
}
