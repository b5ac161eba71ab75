//! Text read from a database as bytes, checked to be UTF-8: one check for
//! every connector. Most stored text is ASCII, which a word-at-a-time check
//! proves valid more cheaply than the general UTF-8 validator's call on a
//! short value.

/// `bytes` as `str`, or why they are not UTF-8.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Exactly the standard check, on ASCII, on other UTF-8 and on
        /// bytes that are not UTF-8 at all.
        #[test]
        fn reads_as_std_does(bytes in prop_oneof![
            proptest::collection::vec(0u8..0x80, 0..40),
            any::<String>().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]) {
            prop_assert_eq!(utf8(&bytes), std::str::from_utf8(&bytes));
        }
    }
}
