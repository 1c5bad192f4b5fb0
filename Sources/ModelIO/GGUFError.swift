import Foundation

/// Everything that can be wrong with a GGUF file, each naming the file and what was wrong.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, errno: Int32)
    case badMagic(path: String, found: UInt32)
    case unsupportedVersion(path: String, version: UInt32)
    case truncated(path: String, reading: String, offset: Int, fileSize: Int)
    case malformed(path: String, reason: String)
    case unsupportedTensorType(path: String, tensor: String, type: UInt32)
    case tensorOutOfBounds(path: String, tensor: String, end: Int, fileSize: Int)
    case missingTensor(path: String, tensor: String)
    case missingKey(path: String, key: String)
    case wrongKeyType(path: String, key: String, expected: String, found: String)
    case wrongShape(path: String, tensor: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .cannotOpen(path, errno):
            return "\(path): cannot open GGUF file: \(String(cString: strerror(errno))) (errno \(errno))"
        case let .badMagic(path, found):
            return "\(path): not a GGUF file (magic 0x\(String(found, radix: 16)), expected 0x46554747 \"GGUF\")"
        case let .unsupportedVersion(path, version):
            return "\(path): GGUF version \(version) is not supported (versions 2 and 3 are)"
        case let .truncated(path, reading, offset, fileSize):
            return "\(path): file is truncated: reading \(reading) at byte \(offset) but the file has \(fileSize) bytes"
        case let .malformed(path, reason):
            return "\(path): malformed GGUF: \(reason)"
        case let .unsupportedTensorType(path, tensor, type):
            return "\(path): tensor '\(tensor)' has type \(GGMLType(rawValue: type).map { "\($0)" } ?? "id \(type)"), which cannot be dequantized (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)"
        case let .tensorOutOfBounds(path, tensor, end, fileSize):
            return "\(path): tensor '\(tensor)' data ends at byte \(end) but the file has \(fileSize) bytes (truncated download?)"
        case let .missingTensor(path, tensor):
            return "\(path): tensor '\(tensor)' is missing"
        case let .missingKey(path, key):
            return "\(path): metadata key '\(key)' is missing"
        case let .wrongKeyType(path, key, expected, found):
            return "\(path): metadata key '\(key)' should be \(expected) but is \(found)"
        case let .wrongShape(path, tensor, expected, found):
            return "\(path): tensor '\(tensor)' has shape \(found), expected \(expected)"
        }
    }
}
