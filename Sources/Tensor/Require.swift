/// Checks a condition at an API boundary and stops the process with `message` when it fails,
/// in every build configuration.
///
/// The numerics targets are compiled with `-Ounchecked`, which removes `precondition` and
/// `assert`; the checks that guard memory safety at the edges of the hot loops (a decode slot
/// inside its cache, a bf16 kernel on a CPU that has the instructions, a leading dimension no
/// smaller than its row) use `require` so that they run whatever the flags. `fatalError` is
/// never compiled out. Inner loops index raw buffers and check nothing per element.
@inline(__always)
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if _slowPath(!condition()) { requirementFailed(message(), file: file, line: line) }
}

@inline(never)
private func requirementFailed(_ message: String, file: StaticString, line: UInt) -> Never {
    fatalError(message, file: file, line: line)
}
