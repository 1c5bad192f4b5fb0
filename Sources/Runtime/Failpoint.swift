import Foundation
import Synchronization

/// Named places where a process can be made to pause, so that a fault test can kill it at
/// exactly that moment (half-way through a checkpoint, a delta, a weight update) instead of
/// hoping a random kill lands there. Off unless the environment names them:
///
///     CODERL_FAILPOINTS="checkpoint-written=20000,delta-materialized=20000"
///
/// makes a process that reaches `checkpoint-written` log `failpoint checkpoint-written
/// reached (...): pausing 20000 ms` and sleep there. `NAME=MS@N` pauses the N-th time the
/// process reaches it (default the first); each failpoint pauses once per process (a restarted
/// process counts again). Unset, reaching one costs a dictionary lookup.
public enum Failpoint {
    /// The failpoints and where they are.
    public enum Name: String, CaseIterable, Sendable {
        /// The learner wrote a checkpoint's files but has not pointed `latest` at them.
        case checkpointWritten = "checkpoint-written"
        /// The param-store made a whole version from a delta (over its oldest version, which
        /// it no longer serves) but has not checked or registered it.
        case deltaMaterialized = "delta-materialized"
        /// A sampler read a new version's changed tensors into its model in place, but has not
        /// packed them again (bf16) or recorded the version.
        case weightsApplying = "weights-applying"
    }

    static let pauses: [String: (ms: Int, at: Int)] = parse(ProcessInfo.processInfo.environment["CODERL_FAILPOINTS"] ?? "")
    private static let counts = Mutex<[String: Int]>([:])

    /// `NAME=MILLISECONDS` or `NAME=MILLISECONDS@N` items separated by commas; an item that is
    /// not one of these, or names no failpoint, is left out with a message on standard error.
    public static func parse(_ text: String, complain: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        -> [String: (ms: Int, at: Int)] {
        var out: [String: (ms: Int, at: Int)] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let value = parts.count == 2 ? parts[1].split(separator: "@", maxSplits: 1).map(String.init) : []
            guard parts.count == 2, Name(rawValue: parts[0]) != nil, let ms = value.first.flatMap({ Int($0) }), ms >= 0,
                  let at = value.count == 2 ? Int(value[1]) : 1, at >= 1 else {
                complain("CODERL_FAILPOINTS: ignoring '\(item)' (expected NAME=MILLISECONDS or NAME=MILLISECONDS@N, NAME one of \(Name.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            out[parts[0]] = (ms, at)
        }
        return out
    }

    /// Pauses here if the environment names this failpoint and this is the time it pauses at;
    /// `detail` says which checkpoint or version is in hand.
    public static func reach(_ name: Name, _ detail: String, log: Log) {
        guard let pause = pauses[name.rawValue] else { return }
        let count = counts.withLock { c -> Int in
            c[name.rawValue, default: 0] += 1
            return c[name.rawValue]!
        }
        guard count == pause.at else { return }
        log.warning("failpoint \(name.rawValue) reached (\(detail)): pausing \(pause.ms) ms")
        Thread.sleep(forTimeInterval: Double(pause.ms) / 1000)
    }
}
