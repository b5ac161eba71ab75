//! Peak memory of this process, from Linux's `/proc/self/status` (VmHWM, the
//! resident set's high-water mark). Writing `5` to `/proc/self/clear_refs`
//! resets the mark to the current resident set, so each measured run sees
//! its own peak rather than the generator's. Elsewhere (not Linux, or a
//! kernel without `clear_refs`) peaks are reported as unknown, never guessed.

/// Resets the high-water mark; false when this system cannot.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The resident set's high-water mark in bytes, when the system tells it.
pub fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
