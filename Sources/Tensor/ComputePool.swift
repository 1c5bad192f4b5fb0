import Foundation
import Synchronization

/// A fixed set of worker threads that run one data-parallel job at a time: `run(body)` calls
/// `body(part, parts)` once for every part, part 0 on the calling thread, and returns when all
/// are done.
///
/// Workers spin briefly between jobs (decode issues one job per matrix product, a few
/// microseconds apart) and then sleep on a condition variable, so they never compete with
/// OpenBLAS's own threads during prefill. A job submitted while another runs (from another
/// thread, as when several pipeline roles share a test process) runs on its caller alone.
/// `@unchecked Sendable`: `job` is written only by the submitting thread before the release
/// increment of `generation` and read by workers after their acquire load of it.
public final class ComputePool: @unchecked Sendable {
    /// All cores, or `CODERL_THREADS` when set (pipeline roles sharing a machine get a share each).
    public static let shared = ComputePool(threads: threadBudget)

    public static var threadBudget: Int {
        if let text = ProcessInfo.processInfo.environment["CODERL_THREADS"], let n = Int(text), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    public let parts: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    /// Set while a job runs: a second submitter (another thread, or a job submitting from
    /// inside itself) runs its parts on its own thread instead of corrupting the running job.
    private let busy = Atomic<Bool>(false)
    private var job: ((Int, Int) -> Void)?
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var sleepers = 0
    private static let spinLimit = 200_000

    public init(threads: Int) {
        parts = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        for worker in 1..<max(parts, 1) {
            let thread = Thread { [unowned self] in self.workerLoop(worker) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    public func run(_ body: (_ part: Int, _ parts: Int) -> Void) {
        if parts == 1 { body(0, 1); return }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0..<parts { body(part, parts) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            pending.store(parts - 1, ordering: .releasing)
            pthread_mutex_lock(&mutex)
            generation.wrappingAdd(1, ordering: .releasing)
            if sleepers > 0 { pthread_cond_broadcast(&condition) }
            pthread_mutex_unlock(&mutex)
            escapable(0, parts)
            while pending.load(ordering: .acquiring) > 0 {}
            job = nil
        }
    }

    /// Splits `0..<count` into `parts` contiguous ranges whose bounds are multiples of `align`.
    @inline(__always)
    public static func range(_ part: Int, of parts: Int, count: Int, align: Int = 1) -> Range<Int> {
        let blocks = (count + align - 1) / align
        let lo = blocks * part / parts * align, hi = blocks * (part + 1) / parts * align
        return min(lo, count)..<min(hi, count)
    }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins > Self.spinLimit {
                    pthread_mutex_lock(&mutex)
                    while generation.load(ordering: .acquiring) == seen {
                        sleepers += 1
                        pthread_cond_wait(&condition, &mutex)
                        sleepers -= 1
                    }
                    pthread_mutex_unlock(&mutex)
                    break
                }
            }
            seen = generation.load(ordering: .acquiring)
            job!(index, parts)
            pending.subtract(1, ordering: .releasing)
        }
    }
}
