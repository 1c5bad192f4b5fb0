import CIntrinsics

/// General matrix products with bfloat16 inputs and fp32 sums, for CPUs with AVX512-BF16
/// (`vdpbf16ps` does twice the multiply-adds of an fp32 FMA per instruction: 230 vs 115
/// GFLOP/s per core measured on the development machine). The inputs are fp32 and rounded to
/// bfloat16 as they are packed; the result equals fp32 arithmetic on the rounded inputs up to
/// summation order.
///
/// Training's linear layers use it under `MatrixPrecision.bf16` (mixed precision). The kernel
/// (Sources/CIntrinsics/GemmBF16.c) runs at ~170-180 GFLOP/s per core on the training shapes,
/// against OpenBLAS sgemm's ~100.
public enum BF16Gemm {
    /// Whether this CPU can run `product`.
    public static let available = coderl_bf16_supported() != 0

    /// c[m, n] = alpha * op(a) · op(b) + beta * c, row-major; op(a) is a[m, k] or, with
    /// `transA`, the transpose of a[k, m]; op(b) is b[k, n] or, with `transB`, the transpose of
    /// b[n, k]. Rows or columns are split across the pool's threads (nil: all on this thread).
    /// Requires `available`.
    public static func product(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                               _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                               beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int,
                               pool: ComputePool? = .shared) {
        require(available, "BF16Gemm needs a CPU with AVX512-BF16")
        require(m >= 0 && n >= 0 && k >= 0, "negative matrix dimension")
        require(lda >= (transA ? m : k) && ldb >= (transB ? k : n) && ldc >= n, "leading dimension too small")
        guard m > 0, n > 0 else { return }
        let a = UnsafeSendable(a), b = UnsafeSendable(b), c = UnsafeSendable(c)
        // A block of c is a product of its own: rows i0... of op(a) start at row i0 of a (its
        // column i0 when transposed), columns j0... of op(b) at column j0 of b (its row j0).
        let work = { (rows: Range<Int>, columns: Range<Int>) in
            guard !rows.isEmpty, !columns.isEmpty else { return }
            let i0 = rows.lowerBound, j0 = columns.lowerBound
            coderl_gemm_bf16(transA ? 1 : 0, transB ? 1 : 0, rows.count, columns.count, k, alpha,
                             a.pointer + (transA ? i0 : i0 * lda), lda, b.pointer + (transB ? j0 * ldb : j0), ldb,
                             beta, c.pointer + i0 * ldc + j0, ldc)
        }
        // One thread for products too small to split (the packing would dominate).
        guard let pool, m * n * k >= 1 << 20 else {
            work(0..<m, 0..<n)
            return
        }
        // Each thread packs all of the operand it shares: split the longer side, so that the
        // shared operand is the smaller one.
        if m >= n {
            pool.run { part, parts in work(ComputePool.range(part, of: parts, count: m, align: 6), 0..<n) }
        } else {
            pool.run { part, parts in work(0..<m, ComputePool.range(part, of: parts, count: n, align: 32)) }
        }
    }
}

/// A pointer handed to pool threads (each writes its own block of c).
private struct UnsafeSendable<Pointer>: @unchecked Sendable {
    let pointer: Pointer
    init(_ pointer: Pointer) { self.pointer = pointer }
}

/// The arithmetic of a model's matrix products: fp32 throughout, or bfloat16 inputs with fp32
/// sums (`BF16Gemm`; mixed precision: weights, gradients and everything else stay fp32).
public enum MatrixPrecision: String, Sendable, CaseIterable {
    case fp32, bf16

    /// Why this precision cannot be used on this CPU, or nil when it can.
    public var unavailableReason: String? {
        self == .bf16 && !BF16Gemm.available ? "bf16 matrix products need a CPU with AVX512-BF16 (this one has none)" : nil
    }
}

/// A weight matrix W[rows, columns] (rows are output features, y = W x) rounded to bfloat16 and
/// packed once for `BF16Gemm`'s kernel, for inference: each product then reads half the bytes
/// of the fp32 weights and packs only its input. Holds a copy: later changes to the fp32
/// weights are not seen (pack again).
public final class BF16PackedMatrix: @unchecked Sendable {  // written by init and `repack` only, by the thread that owns it
    public let rows: Int, columns: Int
    let words: UnsafeMutablePointer<UInt32>
    /// Rows of W per panel (the kernel's NR), panels of W, and words of one panel.
    static let panelRows = 32
    let panels: Int, panelWords: Int

    public init(_ w: UnsafePointer<Float>, rows: Int, columns: Int, pool: ComputePool = .shared) {
        require(BF16Gemm.available, "BF16PackedMatrix needs a CPU with AVX512-BF16")
        require(rows > 0 && columns > 0, "empty matrix")
        self.rows = rows
        self.columns = columns
        panels = (rows + Self.panelRows - 1) / Self.panelRows
        panelWords = coderl_bf16_packed_words(Self.panelRows, columns)
        words = .allocate(capacity: coderl_bf16_packed_words(rows, columns))
        repack(w, pool: pool)
    }

    /// Packs `w` (same shape) again in place: a model whose weights changed keeps its buffers.
    public func repack(_ w: UnsafePointer<Float>, pool: ComputePool = .shared) {
        let w = UnsafeSendable(w), out = UnsafeSendable(words)
        let panels = panels, panelWords = panelWords, columns = columns
        pool.run { part, parts in
            let r = ComputePool.range(part, of: parts, count: panels)
            guard !r.isEmpty else { return }
            let (first, count) = self.rowSpan(r)
            coderl_bf16_pack_rows(w.pointer + first * columns, count, columns, out.pointer + r.lowerBound * panelWords)
        }
    }

    deinit { words.deallocate() }

    /// The first row of W in panels `panels` and how many rows they hold (the last panel may be
    /// partial).
    private func rowSpan(_ panels: Range<Int>) -> (first: Int, count: Int) {
        let first = panels.lowerBound * Self.panelRows
        return (first, min(rows, panels.upperBound * Self.panelRows) - first)
    }

    /// y[m, rows] = x[m, columns] · W^T (or y += with `accumulate`); `ldx` and `ldy` are row
    /// strides. Panels of W are split across the pool's threads.
    public func product(_ x: UnsafePointer<Float>, m: Int, ldx: Int? = nil, _ y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
                        accumulate: Bool = false, pool: ComputePool = .shared) {
        let ldx = ldx ?? columns, ldy = ldy ?? rows
        require(m >= 0 && ldx >= columns && ldy >= rows, "BF16PackedMatrix.product: bad shape")
        guard m > 0 else { return }
        let x = UnsafeSendable(x), y = UnsafeSendable(y), words = UnsafeSendable(UnsafePointer(words))
        let columns = columns, panelWords = panelWords
        let work = { (panels: Range<Int>) in
            guard !panels.isEmpty else { return }
            let (first, count) = self.rowSpan(panels)
            coderl_gemm_bf16_packed(m, count, columns, x.pointer, ldx, words.pointer + panels.lowerBound * panelWords,
                                    y.pointer + first, ldy, accumulate ? 1 : 0)
        }
        if m * rows * columns < 1 << 15 {
            work(0..<panels)
            return
        }
        pool.run { part, parts in work(ComputePool.range(part, of: parts, count: panels)) }
    }
}
