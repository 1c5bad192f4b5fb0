/// What a sample request, and every rollout sampled for it, is for. The wire and the ledger
/// carry it as text (`purpose`): "train" (or empty, in records written before the field) for
/// the RL loop's samples, "eval" for held-out evaluation, whose programs never train the actor.
public enum Purpose: String, Sendable, CaseIterable {
    case train
    case eval

    /// The purpose a record's text names: empty is `train`; text naming no purpose is nil.
    public init?(text: String) {
        if text.isEmpty { self = .train } else { self.init(rawValue: text) }
    }
}

/// A record that carries a purpose as text.
public protocol PurposeCarrying {
    var purpose: String { get set }
}

extension PurposeCarrying {
    /// `purpose` as a `Purpose` (nil for text that names none); setting it writes the text.
    public var use: Purpose? {
        get { Purpose(text: purpose) }
        set { purpose = newValue?.rawValue ?? "" }
    }
}

extension Rollout: PurposeCarrying {}
extension SampleRequest: PurposeCarrying {}
