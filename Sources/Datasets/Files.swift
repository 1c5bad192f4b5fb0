import Foundation

enum Files {
    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static func bytes(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetFileError(path: path, reason: exists(path) ? "cannot be read" : "no such file")
        }
        return [UInt8](data)
    }

    /// The file as UTF-8 text, gunzipped first when it ends in `.gz`.
    static func text(_ path: String) throws -> String {
        var raw = try bytes(path)
        if path.hasSuffix(".gz") { raw = try Gzip.decompress(raw, path: path) }
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw DatasetFileError(path: path, reason: "is not UTF-8 text")
        }
        return text
    }

    static func json(_ path: String, record: String) throws -> JSON {
        do {
            return try JSON.parse(try text(path))
        } catch let error as JSONError {
            throw DatasetError(file: path, record: record, field: "", reason: "\(error)")
        }
    }
}
