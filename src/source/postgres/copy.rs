//! The framing of `COPY … TO STDOUT (FORMAT binary)`, parsed by hand: an
//! 11-byte signature, flags and a header extension, then per tuple an i16
//! field count (-1 ends the data) and per field an i32 length (-1 for NULL)
//! followed by the value in its type's binary send format; all big-endian.
//!
//! The stream arrives in chunks that need not align with tuples, so a tuple
//! split across chunks is kept until it is whole. Values themselves are
//! decoded by the caller (see `decode` in `postgres.rs`); this file only
//! finds them. Malformed data is an error, never a panic.

/// `PGCOPY\n\377\r\n\0`.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Signature, flags, header-extension length.
const HEADER_LEN: usize = 11 + 4 + 4;
/// Flags bit 16: each tuple carries an OID (never asked for here).
const FLAG_OIDS: u32 = 1 << 16;

/// One tuple's fields, borrowed from the buffered bytes.
pub struct Tuple<'a> {
    data: &'a [u8],
    /// (start, length) per field; a negative length is NULL.
    fields: &'a [(usize, i32)],
}

impl<'a> Tuple<'a> {
    /// Field `i`: `None` for NULL (and past the last field).
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let &(start, len) = self.fields.get(i)?;
        let len = usize::try_from(len).ok()?;
        self.data.get(start..start + len)
    }
}

/// Where one parse stopped.
enum Parsed {
    /// A whole tuple ending at this offset (its fields are in `fields`).
    Tuple(usize),
    /// The header ending at this offset.
    Header(usize),
    /// The trailer ending at this offset.
    Trailer(usize),
    /// Not enough bytes yet.
    Incomplete,
}

/// A streaming parser of one `COPY … (FORMAT binary)` output.
pub struct CopyParser {
    /// Fields per tuple, as the query selects them.
    width: usize,
    /// Bytes of a header or tuple that a chunk left unfinished.
    pending: Vec<u8>,
    /// The header has been read.
    started: bool,
    /// The trailer has been read.
    ended: bool,
    /// The current tuple's fields (reused).
    fields: Vec<(usize, i32)>,
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl CopyParser {
    pub fn new(width: usize) -> CopyParser {
        CopyParser {
            width,
            pending: Vec::new(),
            started: false,
            ended: false,
            fields: Vec::with_capacity(width),
        }
    }

    /// Parses the next item of `data` at `pos`.
    fn next(
        started: bool,
        width: usize,
        fields: &mut Vec<(usize, i32)>,
        data: &[u8],
        pos: usize,
    ) -> Result<Parsed, String> {
        let rest = &data[pos.min(data.len())..];
        if !started {
            if rest.len() < HEADER_LEN {
                if !SIGNATURE.starts_with(&rest[..rest.len().min(11)]) {
                    return Err("COPY data does not start with the binary signature".into());
                }
                return Ok(Parsed::Incomplete);
            }
            if rest[..11] != SIGNATURE[..] {
                return Err("COPY data does not start with the binary signature".into());
            }
            let flags = be_i32(rest, 11).unwrap_or_default() as u32;
            if flags & FLAG_OIDS != 0 {
                return Err("COPY data carries OIDs".into());
            }
            let ext = be_i32(rest, 15).unwrap_or_default();
            let ext = usize::try_from(ext)
                .map_err(|_| format!("COPY header extension of length {ext}"))?;
            return Ok(if rest.len() - HEADER_LEN < ext {
                Parsed::Incomplete
            } else {
                Parsed::Header(pos + HEADER_LEN + ext)
            });
        }
        let Some(count) = be_i16(rest, 0) else {
            return Ok(Parsed::Incomplete);
        };
        if count == -1 {
            return Ok(Parsed::Trailer(pos + 2));
        }
        if usize::try_from(count).ok() != Some(width) {
            return Err(format!("COPY tuple of {count} fields, expected {width}"));
        }
        fields.clear();
        let mut p = pos + 2;
        for _ in 0..width {
            let Some(len) = be_i32(data, p) else {
                return Ok(Parsed::Incomplete);
            };
            p += 4;
            if len == -1 {
                fields.push((p, -1));
                continue;
            }
            let n = usize::try_from(len).map_err(|_| format!("COPY field of length {len}"))?;
            if data.len() - p < n {
                return Ok(Parsed::Incomplete);
            }
            fields.push((p, len));
            p += n;
        }
        Ok(Parsed::Tuple(p))
    }

    /// Parses every whole item of `data`, handing each tuple to `row`;
    /// returns how many bytes were used.
    fn parse<E>(
        &mut self,
        data: &[u8],
        row: &mut impl FnMut(&Tuple<'_>) -> Result<(), E>,
        bad: &impl Fn(String) -> E,
    ) -> Result<usize, E> {
        let mut pos = 0;
        while pos < data.len() {
            if self.ended {
                return Err(bad("COPY data after its trailer".into()));
            }
            match Self::next(self.started, self.width, &mut self.fields, data, pos).map_err(bad)? {
                Parsed::Incomplete => break,
                Parsed::Header(end) => {
                    self.started = true;
                    pos = end;
                }
                Parsed::Trailer(end) => {
                    self.ended = true;
                    pos = end;
                }
                Parsed::Tuple(end) => {
                    row(&Tuple {
                        data,
                        fields: &self.fields,
                    })?;
                    pos = end;
                }
            }
        }
        Ok(pos)
    }

    /// Feeds one chunk of the stream: `row` gets each tuple completed by it,
    /// in order; `bad` makes the error for malformed data.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        mut row: impl FnMut(&Tuple<'_>) -> Result<(), E>,
        bad: impl Fn(String) -> E,
    ) -> Result<(), E> {
        if self.pending.is_empty() {
            // The usual case (the server sends one tuple per message):
            // parsed straight from the chunk, nothing copied.
            let used = self.parse(chunk, &mut row, &bad)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(chunk);
            let used = self.parse(&pending, &mut row, &bad);
            let used = match used {
                Ok(u) => u,
                Err(e) => {
                    self.pending = pending;
                    return Err(e);
                }
            };
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// Checks that the stream ended where it should: after its trailer.
    pub fn finish(&self) -> Result<(), String> {
        if !self.ended {
            return Err("COPY data ended before its trailer".into());
        }
        if !self.pending.is_empty() {
            return Err("COPY data after its trailer".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A COPY stream of `rows`, each field `None` for NULL.
    fn stream(rows: &[Vec<Option<&[u8]>>], ext: &[u8]) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&(ext.len() as u32).to_be_bytes());
        b.extend_from_slice(ext);
        for r in rows {
            b.extend_from_slice(&(r.len() as i16).to_be_bytes());
            for f in r {
                match f {
                    None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        b.extend_from_slice(v);
                    }
                }
            }
        }
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b
    }

    type Rows = Vec<Vec<Option<Vec<u8>>>>;

    fn parse_chunks(chunks: &[&[u8]], width: usize) -> Result<Rows, String> {
        let mut p = CopyParser::new(width);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(
                c,
                |t| {
                    out.push((0..width).map(|i| t.get(i).map(<[u8]>::to_vec)).collect());
                    Ok(())
                },
                |e| e,
            )?;
        }
        p.finish()?;
        Ok(out)
    }

    fn sample() -> (Vec<u8>, Rows) {
        let rows: Vec<Vec<Option<&[u8]>>> = vec![
            vec![Some(&[0, 0, 0, 1]), Some(b"abc"), None],
            vec![Some(&[0, 0, 0, 2]), Some(b""), Some(&[1])],
            vec![None, None, None],
        ];
        let want = rows
            .iter()
            .map(|r| r.iter().map(|f| f.map(<[u8]>::to_vec)).collect())
            .collect();
        (stream(&rows, b"xyz"), want)
    }

    #[test]
    fn tuples_split_anywhere_parse_the_same() {
        let (data, want) = sample();
        assert_eq!(parse_chunks(&[&data], 3).unwrap(), want);
        for cut in 0..=data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(parse_chunks(&[a, b], 3).unwrap(), want, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes, 3).unwrap(), want);
        // No columns selected still means a tuple of one field (`SELECT 1`).
        let one = stream(&[vec![Some(&[0, 0, 0, 1])]], b"");
        assert_eq!(parse_chunks(&[&one], 1).unwrap().len(), 1);
    }

    #[test]
    fn malformed_data_is_an_error_not_a_panic() {
        let (data, _) = sample();
        // Every truncation fails (no trailer), every wrong width fails.
        for cut in 0..data.len() {
            assert!(parse_chunks(&[&data[..cut]], 3).is_err(), "cut at {cut}");
        }
        assert!(parse_chunks(&[&data], 2).is_err());
        assert!(parse_chunks(&[&data], 4).is_err());
        // Bad signature, OIDs, negative lengths, data after the trailer.
        let mut bad = data.clone();
        bad[0] = b'X';
        assert!(parse_chunks(&[&bad], 3).is_err());
        let mut oids = data.clone();
        oids[11..15].copy_from_slice(&FLAG_OIDS.to_be_bytes());
        assert!(parse_chunks(&[&oids], 3).is_err());
        let mut neg = stream(&[vec![Some(b"a")]], b"");
        neg[19 + 2..19 + 6].copy_from_slice(&(-2i32).to_be_bytes());
        assert!(parse_chunks(&[&neg], 1).is_err());
        let mut neg_ext = data.clone();
        neg_ext[15..19].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(parse_chunks(&[&neg_ext], 3).is_err());
        let mut after = data.clone();
        after.extend_from_slice(&[0, 3]);
        assert!(parse_chunks(&[&after], 3).is_err());
        assert!(parse_chunks(&[&data, &[0]], 3).is_err());
        // A huge length never allocates or reads out of bounds.
        let mut huge = stream(&[vec![Some(b"a")]], b"");
        huge[19 + 2..19 + 6].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse_chunks(&[&huge], 1).is_err());
        // Arbitrary bytes never panic.
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..2000 {
            let mut junk = SIGNATURE.to_vec();
            junk.extend_from_slice(&[0; 8]);
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                junk.push((x % 7) as u8 * 40);
            }
            let _ = parse_chunks(&[&junk], 2);
        }
    }
}
