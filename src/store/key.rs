//! Order-preserving composite keys.
//!
//! A key is a sequence of parts: strings (which callers guarantee hold no NUL byte;
//! every identifier and e-mail outpost stores is validated to exclude control
//! characters) followed by a NUL separator, and big-endian integers, so that
//! lexicographic byte order equals the logical order and a prefix selects a range.

use std::ops::Bound;

#[derive(Debug, Default, Clone)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Self {
        Key(Vec::with_capacity(64))
    }

    /// Append a string part and its separator.
    pub fn s(mut self, part: &str) -> Self {
        debug_assert!(!part.as_bytes().contains(&0), "key parts never hold NUL");
        self.0.extend_from_slice(part.as_bytes());
        self.0.push(0);
        self
    }

    /// Append a big-endian u64 part (fixed width, no separator needed).
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Split a key made only of string parts back into its parts.
pub fn split(key: &[u8]) -> Vec<&str> {
    key.split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| std::str::from_utf8(p).unwrap_or(""))
        .collect()
}

/// The last string part of a key made of string parts.
pub fn last_part(key: &[u8]) -> &str {
    split(key).last().copied().unwrap_or("")
}

/// Bounds selecting every key that starts with `prefix`.
pub fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    if prefix.is_empty() {
        return (Bound::Unbounded, Bound::Unbounded);
    }
    let lo = Bound::Included(prefix.to_vec());
    let mut hi = prefix.to_vec();
    while let Some(last) = hi.pop() {
        if last < 0xff {
            hi.push(last + 1);
            return (lo, Bound::Excluded(hi));
        }
    }
    (lo, Bound::Unbounded)
}

/// The u64 at the end of a key (for keys ending in a [`Key::u64`] part).
pub fn trailing_u64(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[start..].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_keys_sort_like_their_parts() {
        let a = Key::new().s("net").s("a@x").into_bytes();
        let b = Key::new().s("net").s("ab@x").into_bytes();
        assert!(a < b);
        let (lo, hi) = prefix_bounds(&Key::new().s("net").into_bytes());
        let inside = |k: &Vec<u8>| {
            matches!(&lo, Bound::Included(l) if k >= l)
                && matches!(&hi, Bound::Excluded(h) if k < h)
        };
        assert!(inside(&a) && inside(&b));
        assert!(!inside(&Key::new().s("neu").s("a").into_bytes()));
        assert_eq!(split(&a), vec!["net", "a@x"]);
        assert_eq!(
            trailing_u64(&Key::new().s("x").u64(7).into_bytes()),
            Some(7)
        );
    }
}
