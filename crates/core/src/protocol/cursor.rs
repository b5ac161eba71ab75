//! The cursor every decoder reads untrusted bytes through, and the key
//! writers that match its key readers.

use crate::key::Key;
use crate::varint;

use super::{TreeId, WireError, MAX_KEY_LEN};

/// A cursor over untrusted bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(super) fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.left() {
            return Err(WireError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    /// A varint; most (lengths, counts) are one byte.
    #[inline]
    pub(super) fn varint(&mut self) -> Result<u64, WireError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.long_varint(),
        }
    }

    fn long_varint(&mut self) -> Result<u64, WireError> {
        let (v, n) = varint::get(&self.buf[self.pos..]).map_err(|e| match e {
            varint::VarintError::Truncated => WireError::Truncated,
            varint::VarintError::Overflow => WireError::Invalid("varint overflows 64 bits"),
            varint::VarintError::TooLong => WireError::Invalid("varint longer than 10 bytes"),
        })?;
        self.pos += n;
        Ok(v)
    }

    /// A varint that must fit `max`.
    pub(super) fn bounded(&mut self, max: u64, what: &'static str) -> Result<u64, WireError> {
        let v = self.varint()?;
        if v > max {
            return Err(WireError::Invalid(what));
        }
        Ok(v)
    }

    pub(super) fn tree(&mut self) -> Result<TreeId, WireError> {
        Ok(TreeId::from_le_bytes(self.array()?))
    }

    /// A count of items each at least `min_size` bytes long: checked against
    /// what is left, so no claimed count can make a decoder allocate more
    /// than the message could hold.
    pub(super) fn count(&mut self, min_size: usize, max: u64) -> Result<usize, WireError> {
        let n = self.bounded(max, "count out of range")?;
        if n.saturating_mul(min_size as u64) > self.left() as u64 {
            return Err(WireError::Truncated);
        }
        Ok(n as usize)
    }

    pub(super) fn key(&mut self) -> Result<Key, WireError> {
        let len = self.bounded(MAX_KEY_LEN as u64, "key too long")? as usize;
        Ok(Key::from_bytes(self.bytes(len)?))
    }

    /// A prefix-compressed key following `prev` (whose bytes it overwrites).
    pub(super) fn key_after(&mut self, prev: &mut Vec<u8>) -> Result<(), WireError> {
        let shared = self.bounded(
            prev.len() as u64,
            "shared prefix longer than the key before",
        )?;
        let rest = self.bounded(MAX_KEY_LEN as u64, "key too long")? as usize;
        let rest = self.bytes(rest)?;
        prev.truncate(shared as usize);
        if prev.len() + rest.len() > MAX_KEY_LEN {
            return Err(WireError::Invalid("key too long"));
        }
        prev.extend_from_slice(rest);
        Ok(())
    }

    pub(super) fn finish(self) -> Result<(), WireError> {
        match self.left() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

pub(super) fn put_key(out: &mut Vec<u8>, key: &[u8]) {
    varint::put(out, key.len() as u64);
    out.extend_from_slice(key);
}

pub(super) fn put_key_after(out: &mut Vec<u8>, prev: &[u8], key: &[u8]) {
    let shared = prev.iter().zip(key).take_while(|(a, b)| a == b).count();
    varint::put(out, shared as u64);
    varint::put(out, (key.len() - shared) as u64);
    out.extend_from_slice(&key[shared..]);
}

/// How many bytes [`put_key_after`] writes.
pub(super) fn key_after_len(prev: &[u8], key: &[u8]) -> usize {
    let shared = prev.iter().zip(key).take_while(|(a, b)| a == b).count();
    varint::len(shared as u64) + varint::len((key.len() - shared) as u64) + key.len() - shared
}

pub(super) fn put_keys(out: &mut Vec<u8>, keys: &[Key]) {
    varint::put(out, keys.len() as u64);
    let mut prev: &[u8] = &[];
    for k in keys {
        put_key_after(out, prev, k.as_bytes());
        prev = k.as_bytes();
    }
}

/// Prefix-compressed keys, strictly ascending.
pub(super) fn get_keys(r: &mut Reader<'_>, max: u64) -> Result<Vec<Key>, WireError> {
    let n = r.count(2, max)?;
    let mut keys: Vec<Key> = Vec::with_capacity(n);
    let mut cur = Vec::new();
    for _ in 0..n {
        r.key_after(&mut cur)?;
        if keys.last().is_some_and(|p| p.as_bytes() >= &cur[..]) {
            return Err(WireError::Invalid("keys not ascending"));
        }
        keys.push(Key::from_bytes(&cur));
    }
    Ok(keys)
}
