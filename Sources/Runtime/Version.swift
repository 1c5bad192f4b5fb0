/// The version every binary prints with `--version`.
public enum CodeRLVersion {
    public static let string = "0.5.0"
}
