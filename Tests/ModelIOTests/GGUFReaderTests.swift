import Foundation
import ModelIO
import XCTest

final class GGUFReaderTests: XCTestCase {
    func sampleWriter(version: UInt32 = 3, alignment: Int = 32) -> GGUFWriter {
        var w = GGUFWriter(version: version, alignment: alignment)
        w.add("u8", .uint8(200)); w.add("i8", .int8(-100)); w.add("u16", .uint16(60000)); w.add("i16", .int16(-30000))
        w.add("u32", .uint32(4_000_000_000)); w.add("i32", .int32(-2_000_000_000)); w.add("u64", .uint64(1 << 60))
        w.add("i64", .int64(-(1 << 60))); w.add("f32", .float32(1.5)); w.add("f64", .float64(-2.25))
        w.add("yes", .bool(true)); w.add("name", .string("naïve ✓"))
        w.add("ints", .array(.int32, [.int32(1), .int32(-2)]))
        w.add("strs", .array(.string, [.string("a b"), .string("")]))
        w.add("nested", .array(.array, [.array(.uint8, [.uint8(1)]), .array(.uint8, [])]))
        w.add("empty", .array(.float32, []))
        w.addTensor("vec", shape: [4], values: [1, -2, 3.5, 0])
        w.addTensor("mat", shape: [32, 2], values: (0..<64).map { Float($0) / 8 - 4 }, type: .f16)
        return w
    }

    func testRoundTripsEveryMetadataTypeInVersions2And3() throws {
        for version: UInt32 in [2, 3] {
            let path = try TestFiles.write(sampleWriter(version: version, alignment: 64).serialized(), "all-\(version).gguf")
            let f = try GGUFFile(path: path)
            XCTAssertEqual(f.version, version)
            XCTAssertEqual(f.alignment, 64)
            XCTAssertEqual(f.dataOffset % 64, 0)
            XCTAssertEqual(f.metadata["u8"], .uint8(200))
            XCTAssertEqual(f.metadata["i8"], .int8(-100))
            XCTAssertEqual(f.metadata["u16"], .uint16(60000))
            XCTAssertEqual(f.metadata["i16"], .int16(-30000))
            XCTAssertEqual(f.metadata["u32"], .uint32(4_000_000_000))
            XCTAssertEqual(f.metadata["i32"], .int32(-2_000_000_000))
            XCTAssertEqual(f.metadata["u64"], .uint64(1 << 60))
            XCTAssertEqual(f.metadata["i64"], .int64(-(1 << 60)))
            XCTAssertEqual(f.metadata["f32"], .float32(1.5))
            XCTAssertEqual(f.metadata["f64"], .float64(-2.25))
            XCTAssertEqual(f.metadata["yes"], .bool(true))
            XCTAssertEqual(try f.string("name"), "naïve ✓")
            XCTAssertEqual(try f.ints("ints"), [1, -2])
            XCTAssertEqual(try f.strings("strs"), ["a b", ""])
            XCTAssertEqual(f.metadata["nested"], .array(.array, [.array(.uint8, [.uint8(1)]), .array(.uint8, [])]))
            XCTAssertEqual(f.metadata["empty"], .array(.float32, []))
            XCTAssertEqual(f.metadataKeys.first, "u8")
            XCTAssertEqual(try f.load("vec").array, [1, -2, 3.5, 0])
            XCTAssertEqual(try f.load("mat", shape: [32, 2]).array, (0..<64).map { Float($0) / 8 - 4 })
            XCTAssertEqual(f.tensorInfo("mat")?.type, .f16)
        }
    }

    func testTypedAccessorsNameTheKeyAndTheProblem() throws {
        let f = try GGUFFile(path: try TestFiles.write(sampleWriter().serialized(), "typed.gguf"))
        XCTAssertThrowsError(try f.string("u8")) { e in
            XCTAssertEqual(e as? GGUFError, .wrongKeyType(path: f.path, key: "u8", expected: "a string", found: "uint8"))
        }
        XCTAssertThrowsError(try f.int("nope")) { e in XCTAssertEqual(e as? GGUFError, .missingKey(path: f.path, key: "nope")) }
        XCTAssertThrowsError(try f.load("missing")) { e in XCTAssertEqual(e as? GGUFError, .missingTensor(path: f.path, tensor: "missing")) }
        XCTAssertThrowsError(try f.load("vec", shape: [5])) { e in
            XCTAssertEqual(e as? GGUFError, .wrongShape(path: f.path, tensor: "vec", expected: [5], found: [4]))
        }
    }

    func testWrongMagicAndVersionAreRejected() throws {
        var bytes = sampleWriter().serialized()
        bytes[0] = UInt8(ascii: "X")
        let p1 = try TestFiles.write(bytes, "magic.gguf")
        XCTAssertThrowsError(try GGUFFile(path: p1)) { e in
            guard case .badMagic(p1, _) = e as? GGUFError else { return XCTFail("\(e)") }
            XCTAssertTrue("\(e)".contains("not a GGUF file"))
        }
        let p2 = try TestFiles.write(sampleWriter(version: 1).serialized(), "v1.gguf")
        XCTAssertThrowsError(try GGUFFile(path: p2)) { e in XCTAssertEqual(e as? GGUFError, .unsupportedVersion(path: p2, version: 1)) }
        XCTAssertThrowsError(try GGUFFile(path: "/nonexistent/model.gguf")) { e in
            XCTAssertEqual(e as? GGUFError, .cannotOpen(path: "/nonexistent/model.gguf", errno: ENOENT))
        }
    }

    func testEveryTruncationGivesAnErrorNeverACrash() throws {
        let full = sampleWriter().serialized()
        for cut in 0..<full.count {
            let path = try TestFiles.write(Array(full.prefix(cut)), "cut.gguf")
            XCTAssertThrowsError(try GGUFFile(path: path), "a file cut at \(cut) of \(full.count) bytes opened") { e in
                switch e as? GGUFError {
                case .truncated?, .tensorOutOfBounds?, .malformed?: break
                default: XCTFail("cut at \(cut): unexpected \(e)")
                }
            }
        }
    }

    func testTruncatedTensorDataNamesTheTensor() throws {
        let full = sampleWriter().serialized()
        let path = try TestFiles.write(Array(full.prefix(full.count - 10)), "cutdata.gguf")
        XCTAssertThrowsError(try GGUFFile(path: path)) { e in
            guard case let .tensorOutOfBounds(_, tensor, _, _)? = e as? GGUFError else { return XCTFail("\(e)") }
            XCTAssertEqual(tensor, "mat")
            XCTAssertTrue("\(e)".contains("'mat'"))
        }
    }

    func testRandomCorruptionNeverCrashes() throws {
        let full = sampleWriter().serialized()
        var rng = SystemRandomNumberGenerator()
        for i in 0..<300 {
            var bytes = full
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 8..<min(bytes.count, 600), using: &rng)
                bytes[at] = UInt8.random(in: 0...255, using: &rng)
            }
            let path = try TestFiles.write(bytes, "fuzz.gguf")
            // Either it opens (the byte was inside a value) or it fails with a GGUFError.
            do {
                let f = try GGUFFile(path: path)
                for t in f.tensors { _ = try? f.load(t.name) }
            } catch {
                XCTAssertTrue(error is GGUFError, "iteration \(i): \(error)")
            }
        }
    }

    /// Found by the random-corruption test: a tensor of a type we cannot read with a huge
    /// (corrupt) shape made `load` ask the allocator for 119 TB before noticing the type (here 256 GB); and
    /// four large dimensions must not overflow the element count.
    func testCorruptShapesAreErrorsNotAllocations() throws {
        var w = GGUFWriter()
        w.addRawTensor("huge", shape: [1 << 30, 1 << 6], typeID: 99, bytes: [UInt8](repeating: 0, count: 64))
        let f = try GGUFFile(path: try TestFiles.write(w.serialized(), "huge.gguf"))
        XCTAssertThrowsError(try f.load("huge")) { e in
            XCTAssertEqual(e as? GGUFError, .unsupportedTensorType(path: f.path, tensor: "huge", type: 99))
        }
        var o = GGUFWriter()
        o.addRawTensor("overflow", shape: [1 << 39, 1 << 39, 1 << 39], typeID: GGMLType.f32.rawValue, bytes: [UInt8](repeating: 0, count: 64))
        let path = try TestFiles.write(o.serialized(), "overflow.gguf")
        XCTAssertThrowsError(try GGUFFile(path: path)) { e in
            guard case let .malformed(p, reason)? = e as? GGUFError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, path)
            XCTAssertTrue(reason.contains("'overflow'") && reason.contains("too many elements"), reason)
        }
    }

    func testUnsupportedTensorTypeNamesTheTensorAndType() throws {
        var w = GGUFWriter()
        w.addRawTensor("blk.0.ffn_down.weight", shape: [256], typeID: GGMLType.q4_k.rawValue, bytes: [UInt8](repeating: 0, count: 144))
        let f = try GGUFFile(path: try TestFiles.write(w.serialized(), "q4k.gguf"))
        XCTAssertThrowsError(try f.load("blk.0.ffn_down.weight")) { e in
            XCTAssertEqual(e as? GGUFError, .unsupportedTensorType(path: f.path, tensor: "blk.0.ffn_down.weight", type: 12))
            XCTAssertTrue("\(e)".contains("Q4_K"), "\(e)")
        }
    }

    func testTheRealModelFileCutShortNamesTheFirstMissingTensor() throws {
        let model = try TestFiles.defaultModel()
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: model))
        let head = try XCTUnwrap(try handle.read(upToCount: 20_000_000))
        let path = try TestFiles.write(Array(head), "cut-model.gguf")
        XCTAssertThrowsError(try GGUFFile(path: path)) { e in
            guard case let .tensorOutOfBounds(p, tensor, end, size)? = e as? GGUFError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, path)
            XCTAssertEqual(size, 20_000_000)
            XCTAssertGreaterThan(end, size)
            XCTAssertTrue(tensor.hasPrefix("blk.") || tensor.hasPrefix("token_embd"), tensor)
        }
    }

    func testTheRealModelHeader() throws {
        let f = try GGUFFile(path: try TestFiles.defaultModel())
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.tensors.count, 272)
        XCTAssertEqual(try f.string("general.architecture"), "llama")
        XCTAssertEqual(try f.int("llama.block_count"), 30)
        XCTAssertEqual(try f.strings("tokenizer.ggml.tokens").count, 49152)
        XCTAssertEqual(f.tensorInfo("token_embd.weight")?.type, .q8_0)
        XCTAssertEqual(f.tensorInfo("blk.0.attn_q.weight")?.type, .q4_1)
        XCTAssertEqual(f.tensorInfo("blk.0.attn_k.weight")?.shape, [576, 192])
    }
}
