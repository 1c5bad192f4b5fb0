import ArgumentParser
import Foundation
import ZeroMQ

/// `coderl keys`: make a CURVE key pair file and, on the head, admit a public key.
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a CURVE key pair file (or read an existing one) and print its public key; optionally add that key to an allow-list.",
        discussion: """
            A key file holds two lines, the public key and the secret key (Z85), and is created \
            with mode 0600; an existing file is read, never overwritten. Give the public key to \
            the other side: an executor's to the head's allow-list (endpoints.executor_allow), \
            the head's to executors (--server-key). The head re-reads its allow-list when the file \
            changes, so a machine added with --allow joins the running pipeline without a restart.

            Examples:
              coderl keys exec.key                         # on an executor machine
              coderl keys --public-key 'Z85...' --allow runs/keys/allowed  # on the head
              coderl keys exec.key --allow runs/keys/allowed  # both on one machine
            """)

    @Argument(help: "Key pair file (created when absent).") var file: String?
    @Option(help: "A public key (Z85, 40 characters) to add with --allow instead of FILE's.") var publicKey: String?
    @Option(help: "Allow-list file to append the public key to (created when absent; a key already listed is not repeated).") var allow: String?
    @Option(help: "Comment written after the key in the allow-list (e.g. the machine's name).") var comment: String?

    func validate() throws {
        if (file == nil) == (publicKey == nil) { throw ValidationError("give a key file or --public-key (one of them)") }
        if publicKey != nil && allow == nil { throw ValidationError("--public-key is only for --allow") }
        if let publicKey, !CurveKeyPair.isValidKey(publicKey) { throw ValidationError("--public-key '\(publicKey)' is not a 40-character Z85 key") }
        if let comment, comment.contains("\n") { throw ValidationError("--comment must be one line") }
    }

    func run() throws {
        let key: String
        if let file {
            let existed = FileManager.default.fileExists(atPath: file)
            key = try CurveKeyPair.loadOrCreate(file: file).publicKey
            FileHandle.standardError.write(Data("\(existed ? "read" : "created") \(file)\n".utf8))
            print(key)
        } else {
            key = publicKey!
        }
        guard let allow else { return }
        if let count = try CurveKeyPair.admit(key, toAllowList: allow, comment: comment) {
            FileHandle.standardError.write(Data("added \(key) to \(allow) (\(count) key(s))\n".utf8))
        } else {
            FileHandle.standardError.write(Data("\(allow) already lists \(key)\n".utf8))
        }
    }
}
