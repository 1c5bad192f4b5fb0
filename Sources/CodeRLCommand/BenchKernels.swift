import ArgumentParser
import Foundation
import Llama
import Tensor

/// The decode matrix products alone: one pass over every weight matrix of the model (each
/// layer's q|k|v, output, gate|up and down projections, then the vocabulary), with M input
/// rows, by `SkinnyGemm`, by OpenBLAS and (on AVX512-BF16 CPUs) from bf16 weights packed once
/// (`BF16PackedMatrix`, what `--precision bf16` decodes with), next to the machine's own ceilings.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Decode matrix products (SkinnyGemm, OpenBLAS, bf16 packed weights) on the model's shapes, against the machine's ceilings.",
        discussion: """
            M is the number of sequences decoded together. At M = 1 a pass is bound by memory \
            bandwidth (it reads every weight once), at M = 64 by the multiply-add rate, so the \
            figures are printed as both GB/s of weights read and GFLOP/s.

            Examples:
              coderl bench kernels
              coderl bench kernels --rows 1,16 --repeats 5
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Input rows M to measure (comma separated).")
    var rows: String = "1,16,64"

    @Option(help: "Passes per measurement (the best is reported).")
    var repeats: Int = 4

    @Flag(help: "Also the training step's products for one block and the output layer (2048 rows, forward and both backward products), in bfloat16 (AVX512-BF16, BF16Gemm) against OpenBLAS fp32.")
    var training = false

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
    }

    func run() throws {
        let rowCounts = try wholeNumbers(rows, option: "--rows")
        if let m = rowCounts.first(where: { $0 > SkinnyGemm.maxRows }) {
            throw ValidationError("--rows: \(m) is more than SkinnyGemm takes (\(SkinnyGemm.maxRows))")
        }
        let (model, _, _) = try modelOptions.load(precision: .fp32)
        let c = model.config
        // (N, K) of every product of one decode step, in the order the model runs them.
        var shapes: [(n: Int, k: Int)] = []
        for _ in 0..<c.layers {
            shapes += [(c.qkvWidth, c.channels), (c.channels, c.heads * c.headSize),
                       (2 * c.feedForward, c.channels), (c.channels, c.feedForward)]
        }
        shapes.append((c.vocabularySize, c.channels))
        // Separate buffers like the model's (its own weights are one buffer in this order too).
        let matrices = shapes.map { shape -> FloatBuffer in
            let b = FloatBuffer(count: shape.n * shape.k)
            for i in 0..<b.count { b[i] = Float(i % 13 - 6) * 1e-3 }
            return b
        }
        let widest = shapes.map(\.k).max()!, tallest = shapes.map(\.n).max()!
        let maxRows = rowCounts.max()!
        let x = FloatBuffer(count: maxRows * widest), y = FloatBuffer(count: maxRows * tallest)
        for i in 0..<x.count { x[i] = Float(i % 7) * 0.01 }
        let weightCount = shapes.reduce(0) { $0 + $1.n * $1.k }

        let ceiling = MachineCeiling.measure()
        print("\(shapes.count) products per pass, \(weightCount / 1_000_000)M weights (\(weightCount * 4 / 1_000_000) MB fp32); our GEMM on \(ComputePool.shared.parts) threads, OpenBLAS \(BLAS.coreName) on \(BLAS.threads)")
        print(String(format: "machine: OpenBLAS sgemm 1024^3 %.0f GFLOP/s, memory read %.1f GB/s", ceiling.sgemmGFLOPS, ceiling.readGBps))
        let packed = BF16Gemm.available ? matrices.enumerated().map { i, b in
            BF16PackedMatrix(b.pointer, rows: shapes[i].n, columns: shapes[i].k)
        } : []
        if packed.isEmpty { print("bf16 packed weights: \(MatrixPrecision.bf16.unavailableReason ?? "")") }
        for m in rowCounts {
            // name, bytes per weight read, product of matrix i
            var products: [(String, Int, (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void)] = [
                ("SkinnyGemm", 4, { i, x, y, n, k in SkinnyGemm.run(x, matrices[i].pointer, y, m: m, n: n, k: k) }),
                ("OpenBLAS", 4, { i, x, y, n, k in BLAS.gemmNT(x, matrices[i].pointer, y, m: m, n: n, k: k) }),
            ]
            if !packed.isEmpty {
                products.append(("bf16 packed", 2, { i, x, y, _, _ in packed[i].product(x, m: m, y) }))
            }
            for (name, bytesPerWeight, product) in products {
                var best = Double.infinity
                for _ in 0..<repeats {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    for (i, shape) in shapes.enumerated() {
                        product(i, x.pointer, y.pointer, shape.n, shape.k)
                    }
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                let gflops = 2 * Double(weightCount * m) / best / 1e9
                let gbps = Double(weightCount * bytesPerWeight) / best / 1e9
                print(String(format: "M = %-3d %@ %7.2f ms per pass  %6.1f GFLOP/s (%3.0f%% of sgemm)  %5.1f GB/s (%3.0f%% of read)",
                             m, name.padding(toLength: 11, withPad: " ", startingAt: 0), best * 1e3, gflops, 100 * gflops / ceiling.sgemmGFLOPS, gbps, 100 * gbps / ceiling.readGBps))
            }
        }
        if training { try trainingProducts(c, ceiling: ceiling) }
    }

    /// One block's linear layers and the output layer as a training step of 8 x 256 tokens
    /// runs them: y = x W^T, dx = dy W, dW += dy^T x.
    func trainingProducts(_ c: LlamaConfig, ceiling: MachineCeiling) throws {
        if let reason = MatrixPrecision.bf16.unavailableReason {
            print("training products: \(reason); nothing to compare")
            return
        }
        let rows = 2048
        let linears = [(c.qkvWidth, c.channels), (c.channels, c.heads * c.headSize), (2 * c.feedForward, c.channels),
                       (c.channels, c.feedForward), (c.vocabularySize, c.channels)]
        let widest = linears.map { max($0.0, $0.1) }.max()!
        let w = FloatBuffer(count: linears.map { $0.0 * $0.1 }.max()!), dw = FloatBuffer(count: w.count)
        let x = FloatBuffer(count: rows * widest), y = FloatBuffer(count: rows * widest), dx = FloatBuffer(count: rows * widest)
        for i in 0..<w.count { w[i] = Float(i % 13 - 6) * 1e-3 }
        for i in 0..<x.count { x[i] = Float(i % 7) * 0.01 }
        let flops = linears.reduce(0.0) { $0 + 6 * Double(rows * $1.0 * $1.1) }
        print(String(format: "training products (%d rows; one block's 4 linear layers and the output layer, forward and backward): %.0f GFLOP per pass", rows, flops / 1e9))
        // The products as training runs them (Layers' linear layer), in each arithmetic.
        for precision in MatrixPrecision.allCases {
            var best = Double.infinity
            for _ in 0..<max(1, repeats / 2) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for (out, inner) in linears {
                    Layers.linearForward(y.pointer, x.pointer, w.pointer, rows: rows, in: inner, out: out, precision: precision)
                    Layers.linearBackward(dx: dx.pointer, dw: dw.pointer, dy: y.pointer, x: x.pointer, w: w.pointer,
                                          rows: rows, in: inner, out: out, precision: precision)
                }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let name = precision == .fp32 ? "OpenBLAS fp32" : "BF16Gemm bf16"
            print(String(format: "  %-14@ %7.1f ms per pass  %6.1f GFLOP/s (%3.0f%% of the sgemm ceiling)", name, best * 1e3, flops / best / 1e9,
                         100 * flops / best / 1e9 / ceiling.sgemmGFLOPS))
        }
    }
}
