//! LEB128 varints, the one variable-length integer format of core: seven
//! bits a byte, low group first, the high bit set on every byte but the
//! last. Canonical values, leaf entries and the agent protocol all write
//! them through here. (SQLite's own big-endian varint, read by the page
//! reader in the tool, is a different format and lives there.)

/// Why bytes are not a varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The bytes end before the varint does.
    #[error("the message ends early")]
    Truncated,
    /// The value does not fit 64 bits.
    #[error("varint overflows 64 bits")]
    Overflow,
    /// More than ten bytes, which no 64-bit value needs.
    #[error("varint longer than 10 bytes")]
    TooLong,
}

/// Appends `v` as a LEB128 varint.
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// How many bytes [`put`] writes for `v`.
#[inline]
pub fn len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends a 128-bit `v` as a LEB128 varint: the same bytes as [`put`] for
/// any value that fits 64 bits.
#[inline]
pub fn put_u128(out: &mut Vec<u8>, mut v: u128) {
    while v > u64::MAX as u128 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    put(out, v as u64);
}

/// Reads a 64-bit varint from the start of `buf`: its value and the number
/// of bytes it took.
#[inline]
pub fn get(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut v: u64 = 0;
    for (i, shift) in (0..64).step_by(7).enumerate() {
        let b = *buf.get(i).ok_or(VarintError::Truncated)?;
        let bits = (b & 0x7F) as u64;
        if shift == 63 && bits > 1 {
            return Err(VarintError::Overflow);
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(VarintError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_widths_agree() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut a = Vec::new();
            put(&mut a, v);
            let mut b = Vec::new();
            put_u128(&mut b, v as u128);
            assert_eq!(a, b);
            assert_eq!(get(&a), Ok((v, a.len())));
        }
        let mut big = Vec::new();
        put_u128(&mut big, u128::MAX);
        assert_eq!(big.len(), 19);
        assert_eq!(get(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(
            get(&[0xff; 9].iter().chain(&[2]).copied().collect::<Vec<_>>()),
            Err(VarintError::Overflow)
        );
        assert_eq!(get(&[0x80; 11]), Err(VarintError::TooLong));
    }
}
