//! FNV-1a, 64- and 128-bit: the one non-cryptographic hash gavel derives
//! stable ids from (pack content hashes, auto-action ids). Outputs never
//! change between builds or machines, so ids persist across restarts and
//! versions. Not for hash tables facing untrusted keys (no seed) and not a
//! cryptographic digest.

const OFFSET_64: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME_64: u64 = 0x0000_0100_0000_01b3;
const OFFSET_128: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const PRIME_128: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

macro_rules! fnv {
    ($name:ident, $int:ty, $bits:literal, $offset:expr, $prime:expr, $digits:literal) => {
        #[doc = concat!("A running ", $bits, "-bit FNV-1a hash.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $name($int);

        impl Default for $name {
            fn default() -> Self {
                $name($offset)
            }
        }

        impl $name {
            /// A hash of nothing yet.
            pub fn new() -> $name {
                $name::default()
            }

            /// Feeds `bytes`.
            pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
                for &b in bytes {
                    self.0 ^= <$int>::from(b);
                    self.0 = self.0.wrapping_mul($prime);
                }
                self
            }

            /// The hash so far.
            pub fn finish(&self) -> $int {
                self.0
            }

            #[doc = concat!("The hash so far as ", $digits, " lower-case hex digits.")]
            pub fn hex(&self) -> String {
                format!("{:0width$x}", self.0, width = $digits)
            }
        }
    };
}

fnv!(Fnv64, u64, "64", OFFSET_64, PRIME_64, 16);
fnv!(Fnv128, u128, "128", OFFSET_128, PRIME_128, 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_test_vectors() {
        assert_eq!(Fnv64::new().hex(), "cbf29ce484222325");
        assert_eq!(Fnv64::new().write(b"a").hex(), "af63dc4c8601ec8c");
        assert_eq!(Fnv128::new().write(b"a").hex(), "d228cb696f1a8caf78912b704e4a8964");
    }

    #[test]
    fn writes_concatenate() {
        assert_eq!(Fnv64::new().write(b"ab").write(b"c").finish(), Fnv64::new().write(b"abc").finish());
        assert_eq!(Fnv128::new().write(b"a").write(b"bc").finish(), Fnv128::new().write(b"abc").finish());
    }
}
