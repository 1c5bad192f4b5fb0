import CBLAS
import Foundation
import Synchronization

/// The only place that calls OpenBLAS. Matrices are row-major; shapes in the names:
/// `A[M,K]`, `B[N,K]` (stored as rows, i.e. used transposed), `C[M,N]`.
public enum BLAS {
    /// C[M,N] = alpha * A[M,K] · B[N,K]^T + beta * C  (B holds one output feature per row,
    /// the layout of GGUF and Hugging Face linear weights).
    @inline(__always)
    public static func gemmNT(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil,
        alpha: Float = 1, beta: Float = 0
    ) {
        if m == 1 && lda == nil {
            // One row: y[N] = B[N,K] · x[K]; sgemv streams B once and beats sgemm here.
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b,
                        Int32(ldb ?? k), a, 1, beta, c, 1)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda ?? k), b, Int32(ldb ?? k), beta, c, Int32(ldc ?? n))
    }

    /// C[M,N] = alpha * A[M,K] · B[K,N] + beta * C.
    @inline(__always)
    public static func gemmNN(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil,
        alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda ?? k), b, Int32(ldb ?? n), beta, c, Int32(ldc ?? n))
    }

    /// C[M,N] = alpha * A[K,M]^T · B[K,N] + beta * C: weight gradients, dW[out,in] += dY[rows,out]^T · X[rows,in].
    @inline(__always)
    public static func gemmTN(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil,
        alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda ?? m), b, Int32(ldb ?? n), beta, c, Int32(ldc ?? n))
    }

    /// Sets OpenBLAS's thread count. Call once at start-up: changing it while
    /// another thread is inside OpenBLAS is not safe.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with OpenBLAS on one thread, for phases that call many products from
    /// several threads of our own (attention over sequences and heads, training's products over
    /// fixed blocks): OpenBLAS's own threads would compete with them, and a product's result
    /// would depend on how many there are. OpenBLAS's thread count is process-wide, so it stays
    /// at one until the last of any overlapping calls (from other threads too) returns; then
    /// the count from before the first is restored.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        singleThreadedUsers.withLock { state in
            if state.depth == 0 {
                state.saved = openblas_get_num_threads()
                if state.saved != 1 { openblas_set_num_threads(1) }
            }
            state.depth += 1
        }
        defer {
            singleThreadedUsers.withLock { state in
                state.depth -= 1
                if state.depth == 0 && state.saved != 1 { openblas_set_num_threads(state.saved) }
            }
        }
        return try body()
    }

    private static let singleThreadedUsers = Mutex<(depth: Int, saved: Int32)>((0, 1))

    /// The kernel family OpenBLAS picked for this CPU, e.g. "Haswell" or "SkylakeX".
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}

/// Chooses OpenBLAS's kernel before the library initialises.
///
/// Debian's OpenBLAS 0.3.21 picks its AVX2 (Haswell) kernels on AVX-512 CPUs; the SkylakeX
/// kernels make large sgemm about 1.8x faster there. OpenBLAS reads `OPENBLAS_CORETYPE` when it
/// is loaded, which is before `main`, so an executable calls `reexecIfNeeded` first thing: if the
/// CPU has AVX-512F and the variable is unset, it sets it and re-executes itself once.
public enum BLASCoreType {
    public static let environmentKey = "OPENBLAS_CORETYPE"

    public static var cpuHasAVX512F: Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            return false
        }
        return info.split(separator: "\n").contains { line in
            line.hasPrefix("flags") && line.split(separator: " ").contains("avx512f")
        }
    }

    /// The value to use for `OPENBLAS_CORETYPE` on this CPU, or nil to let OpenBLAS decide.
    public static var preferred: String? { cpuHasAVX512F ? "SkylakeX" : nil }

    public static func reexecIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env[environmentKey] == nil, let core = preferred else { return }
        setenv(environmentKey, core, 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv only returns on failure; carry on with OpenBLAS's own choice.
        for p in cargs { free(p) }
    }
}
