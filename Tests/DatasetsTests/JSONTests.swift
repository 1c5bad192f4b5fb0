import XCTest
import Datasets

final class JSONTests: XCTestCase {
    func testNumbersKeepTheirTextAndValuesRoundTrip() throws {
        let json = try JSON.parse(#"{"a": [1, -0.10, 1e400, true, null], "b": "x\"\n\u00e9\ud83d\ude00", "c": {}}"#)
        XCTAssertEqual(json["a"], .array([.number("1"), .number("-0.10"), .number("1e400"), .bool(true), .null]))
        XCTAssertEqual(json["b"]?.stringValue, "x\"\né\u{1F600}")
        XCTAssertEqual(try JSON.parse(json.text), json)
        XCTAssertEqual(JSON.array([.string("a\u{1}")]).text, #"["a\u0001"]"#)
    }

    func testErrorsGiveTheOffset() {
        let cases: [(String, String)] = [
            ("[1, 2", "expected ',' or ']'"), ("{\"a\" 1}", "expected ':'"), ("\"abc", "unterminated string"),
            ("01x", "unexpected text after the value"), ("[1,]", "unexpected character ']'"), ("-", "a number needs digits"),
            ("\"\\q\"", "unknown escape"), ("", "unexpected end of input"), ("nul", "expected 'null'"),
        ]
        for (text, reason) in cases {
            XCTAssertThrowsError(try JSON.parse(text), text) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(text): \(error)")
            }
        }
        XCTAssertThrowsError(try JSON.parse(String(repeating: "[", count: 300) + String(repeating: "]", count: 300))) { error in
            XCTAssertTrue("\(error)".contains("nesting deeper than 256"), "\(error)")
        }
    }

    func testEveryPrefixOfADocumentIsRefusedWithoutCrashing() throws {
        let text = #"{"inputs": [[1, 2.5, "x\u0041"], {"k": [true, false, null]}], "outputs": ["\ud83d\ude00", -3e-2]}"#
        XCTAssertNoThrow(try JSON.parse(text))
        for cut in 0..<text.utf8.count {
            XCTAssertThrowsError(try JSON.parse(Array(text.utf8.prefix(cut))), "cut at \(cut)")
        }
    }
}
