//! Lowercase hex, as Python's `hexdigest()` writes digests (Django's key and
//! file names).

use std::fmt;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes the two hex digits of every byte of `bytes` into `out`, which
/// must be twice as long.
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// `bytes` as lowercase hex, for `format!` and `write!`.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pair = [0u8; 2];
        for byte in self.0 {
            encode_into(std::slice::from_ref(byte), &mut pair);
            // Only ASCII hex digits are ever written.
            f.write_str(std::str::from_utf8(&pair).unwrap_or_default())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_two_digits_per_byte() {
        assert_eq!(Hex(&[0x00, 0x0f, 0xa5, 0xff]).to_string(), "000fa5ff");
        let mut out = [0u8; 4];
        encode_into(&[0xde, 0xad], &mut out);
        assert_eq!(&out, b"dead");
    }
}
