import Foundation

/// CURVE key files: two lines, the public key then the secret key (Z85); allow-lists: one
/// public key per line.
extension CurveKeyPair {
    public static func read(file path: String) throws -> CurveKeyPair {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init)
        guard lines.count >= 2 else { throw CurveError.keyFile(path: path, reason: "expected the public key and the secret key on two lines") }
        return try CurveKeyPair(publicKey: lines[0], secretKey: lines[1])
    }

    /// Reads the key pair, or creates it (mode 0600) when the file does not exist. Processes
    /// creating the same file at once all end up with the one pair that was written first (the
    /// file is written aside and linked into place, never overwritten).
    public static func loadOrCreate(file path: String) throws -> CurveKeyPair {
        if FileManager.default.fileExists(atPath: path) { return try read(file: path) }
        let keys = try CurveKeyPair.generate()
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let aside = "\(path).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        defer { unlink(aside) }
        guard FileManager.default.createFile(atPath: aside, contents: Data("\(keys.publicKey)\n\(keys.secretKey)\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CurveError.keyFile(path: path, reason: "cannot write it")
        }
        if link(aside, path) != 0 {
            guard errno == EEXIST else { throw CurveError.keyFile(path: path, reason: "cannot write it: \(String(cString: strerror(errno)))") }
            return try read(file: path)          // another process made it first
        }
        return keys
    }

    /// The public key on the first line of a key pair file or a public key file.
    public static func readPublicKey(file path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CurveError.keyFile(path: path, reason: "cannot be read")
        }
        let first = String(text.prefix { !$0.isNewline }).trimmingCharacters(in: .whitespaces)
        guard isValidKey(first) else { throw CurveError.keyFile(path: path, reason: "line 1 is not a 40-character Z85 public key") }
        return first
    }

    /// Public keys, one per line (blank lines and `#` comments ignored).
    public static func readAllowList(file path: String) throws -> [String] {
        try parseAllowList(try String(contentsOfFile: path, encoding: .utf8), path: path)
    }

    /// Adds `key` to the allow-list at `path` (created when absent) unless it is listed; the
    /// file is written whole and renamed, so a watching server never reads half a line.
    /// Returns the number of keys listed, or nil when `key` was already there.
    @discardableResult
    public static func admit(_ key: String, toAllowList path: String, comment: String? = nil) throws -> Int? {
        let text = FileManager.default.fileExists(atPath: path) ? try String(contentsOfFile: path, encoding: .utf8) : ""
        let listed = try parseAllowList(text, path: path)
        if listed.contains(key) { return nil }
        let line = key + (comment.map { "  # \($0)" } ?? "") + "\n"
        try (text + (text.isEmpty || text.hasSuffix("\n") ? "" : "\n") + line).write(toFile: path, atomically: true, encoding: .utf8)
        return listed.count + 1
    }

    /// The keys of an allow-list's text; `path` names it in errors.
    public static func parseAllowList(_ text: String, path: String) throws -> [String] {
        var keys: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let key = String(line.prefix(40))
            guard isValidKey(key) else { throw CurveError.keyFile(path: path, reason: "line \(i + 1) is not a 40-character Z85 public key") }
            keys.append(key)
        }
        return keys
    }
}
