import XCTest
import Schema

final class ChecksumTests: XCTestCase {
    func testSHA256MatchesTheFIPSVectors() {
        XCTAssertEqual(SHA256.hash("").hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hash("abc").hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex,
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)).hex,
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256IncrementalUpdatesMatchOneShot() {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for split in [0, 1, 55, 56, 63, 64, 65, 128, 999] {
            var hasher = SHA256()
            hasher.update(data[..<split])
            hasher.update(data[split...])
            XCTAssertEqual(hasher.finalize(), SHA256.hash(data), "split at \(split)")
        }
    }

    func testHexRoundTrip() {
        XCTAssertEqual([UInt8](hex: "00ff10Ab"), [0, 255, 16, 171])
        XCTAssertEqual([0, 255, 16, 171].hex, "00ff10ab")
        XCTAssertNil([UInt8](hex: "abc"))
        XCTAssertNil([UInt8](hex: "zz"))
    }

    func testXXH64MatchesTheReferenceImplementation() {
        // Values from the reference C library (Python package xxhash 3).
        XCTAssertEqual(XXH64.hash([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXH64.hash(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(XXH64.hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXH64.hash(Array("Nobody inspects the spammish repetition".utf8)), 0xFBCE_A83C_8A37_8BF1)
        XCTAssertEqual(XXH64.hash(Array((0..<768).map { UInt8($0 % 256) })), 0x8E03_C838_C596_036F)
        XCTAssertEqual(XXH64.hash(Array("abc".utf8), seed: 42), 0x13C1_D910_7027_70E6)
    }
}
