//! Reading a rowid table straight from its b-tree pages.
//!
//! A scan reads every row, and SQLite's statement machinery (the VDBE, then
//! the column API once per value) was most of a scan's cost, and reading
//! the pages directly takes it out (docs/performance.md has the figures).
//! So full and rowid-range scans of a rowid table walk
//! the table's b-tree here: interior pages in key order, leaf cells in key
//! order, overflow chains followed, records decoded into the same
//! [`ValueRef`]s the column API would give.
//!
//! Pages are read through the connection's own open file (its VFS `xRead`),
//! inside the connection's read transaction. Outside WAL mode that
//! transaction's shared lock keeps every writer from changing the file, so
//! the pages are exactly that transaction's snapshot; in WAL mode newer pages
//! may sit in the log, so [`PageFile::open`] declines. No second file handle
//! is ever opened: closing one would drop the POSIX locks SQLite holds on the
//! file for the whole process.
//!
//! Where the file fits in SQLite's memory-mapping limit, pages are read in
//! place from the VFS's own mapping of it (`xFetch`, the mechanism behind
//! `PRAGMA mmap_size`), held for the scan and released after it: no copy
//! into a buffer, which was a tenth of a scan. Elsewhere, and for any page
//! the mapping does not cover, they are read with `xRead`. As with SQLite's
//! own memory-mapped I/O, a file truncated under a scan by a program that
//! ignores SQLite's locks ends the process with SIGBUS instead of an error.
//!
//! Everything read from the file is bounds-checked: a malformed page is an
//! error naming the page, never a panic.

mod file;

use rusqlite::types::ValueRef;

use self::file::ReadAhead;

/// What reading a rowid table's pages needs to know of it (found by
/// `page_scan`, kept per table by the source).
#[derive(Clone, Debug)]
pub(super) struct PageLayout {
    pub(super) table: String,
    pub(super) root: u32,
    /// The rowid alias (`INTEGER PRIMARY KEY`) column, if the table has one.
    pub(super) rowid: Option<String>,
    /// How SQL names the rowid: the alias, or the first of `rowid`,
    /// `_rowid_` and `oid` that no column shadows.
    pub(super) rowid_sql: String,
    /// Columns in record order, with whether each has REAL affinity.
    pub(super) columns: Vec<(String, bool)>,
}

pub(super) use self::file::{PageError, PageFile};

/// SQLite keeps b-trees at most 20 levels deep; deeper means a damaged file.
const MAX_DEPTH: usize = 24;

/// Pages a walk has read, so that a damaged file whose pointers lead back
/// to a page already read (a cycle, or two parents sharing a child) is an
/// error instead of a walk without end: each page is read at most once, so a
/// walk's work is bounded by the file's size.
#[derive(Default)]
struct Visited(Vec<u64>);

impl Visited {
    /// Marks `page`; `false` if it was marked already.
    fn first_visit(&mut self, page: u32) -> bool {
        let (word, bit) = (page as usize / 64, page % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        let seen = self.0[word] & (1 << bit) != 0;
        self.0[word] |= 1 << bit;
        !seen
    }
}

/// Whether a walk goes on after a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Go,
    Stop,
}

/// One row's record: its values in table column order, borrowed from the
/// page (or the reassembled overflow payload).
pub(super) struct Record<'a> {
    body: &'a [u8],
    /// Serial type and body offset of each value.
    cols: &'a [(u64, usize)],
}

impl<'a> Record<'a> {
    /// Value `i`, as the column API would return it before column affinity
    /// (a REAL column's integral values are stored as integers: see the
    /// caller). `None` past the record's end.
    // Inlined into the scan loop: returned through memory, the value's
    // parts were written and read back with different widths, a
    // store-forwarding stall that showed in a scan's profile.
    #[inline(always)]
    pub(super) fn get(&self, i: usize) -> Option<ValueRef<'a>> {
        let &(ty, at) = self.cols.get(i)?;
        let b = self.body;
        let int = |n: usize| {
            // Sign-extend a big-endian integer of n bytes (the header parse
            // checked the bounds).
            let bytes = &b[at..at + n];
            let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for &x in bytes {
                v = (v << 8) | i64::from(x);
            }
            v
        };
        Some(match ty {
            0 => ValueRef::Null,
            1 => ValueRef::Integer(int(1)),
            2 => ValueRef::Integer(int(2)),
            3 => ValueRef::Integer(int(3)),
            4 => ValueRef::Integer(int(4)),
            5 => ValueRef::Integer(int(6)),
            6 => ValueRef::Integer(int(8)),
            7 => {
                let f = f64::from_bits(int(8) as u64);
                // SQLite reads a stored NaN back as NULL.
                if f.is_nan() {
                    ValueRef::Null
                } else {
                    ValueRef::Real(f)
                }
            }
            8 => ValueRef::Integer(0),
            9 => ValueRef::Integer(1),
            // Reserved types SQLite itself reads as NULL.
            10 | 11 => ValueRef::Null,
            n => {
                let len = serial_len(n).unwrap_or(0);
                let bytes = &b[at..at + len];
                if n % 2 == 0 {
                    ValueRef::Blob(bytes)
                } else {
                    ValueRef::Text(bytes)
                }
            }
        })
    }
}

/// Body bytes of a serial type.
fn serial_len(ty: u64) -> Option<usize> {
    Some(match ty {
        0 | 8..=11 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        5 => 6,
        6 | 7 => 8,
        n => usize::try_from((n - 12) / 2).ok()?,
    })
}

/// A SQLite varint (big-endian, 7 bits a byte, the ninth byte whole) and
/// its length.
#[inline]
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    // Serial types and most cell sizes take one byte: no loop for them.
    if let Some(&c) = b.first() {
        if c < 0x80 {
            return Some((u64::from(c), 1));
        }
    }
    let mut v: u64 = 0;
    for i in 0..8 {
        let c = *b.get(i)?;
        v = (v << 7) | u64::from(c & 0x7f);
        if c < 0x80 {
            return Some((v, i + 1));
        }
    }
    let c = *b.get(8)?;
    Some(((v << 8) | u64::from(c), 9))
}

fn be_u16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A walk over one table's rows in rowid order, `after < rowid <= through`.
pub(super) struct TableWalk<'f, 'c> {
    file: &'f PageFile<'c>,
    after: Option<i64>,
    through: Option<i64>,
    /// One page buffer per tree level, reused from page to page.
    pages: Vec<Vec<u8>>,
    /// A payload that spilled onto overflow pages, reassembled.
    spill: Vec<u8>,
    overflow: Vec<u8>,
    cols: Vec<(u64, usize)>,
    ahead: ReadAhead,
    visited: Visited,
    /// The last rowid sent: rowids must rise strictly.
    last_rowid: Option<i64>,
    /// Whether the visitor reads records: a scan of the rowids alone skips
    /// decoding record headers and reassembling spilled payloads.
    records: bool,
}

impl<'f, 'c> TableWalk<'f, 'c> {
    pub(super) fn new(file: &'f PageFile<'c>, after: Option<i64>, through: Option<i64>) -> Self {
        TableWalk {
            file,
            after,
            through,
            pages: Vec::new(),
            spill: Vec::new(),
            overflow: Vec::new(),
            cols: Vec::new(),
            ahead: ReadAhead::default(),
            visited: Visited::default(),
            last_rowid: None,
            records: true,
        }
    }

    /// A walk whose visitor reads only rowids: every record it is given is
    /// empty.
    pub(super) fn rowids_only(mut self) -> Self {
        self.records = false;
        self
    }

    /// Calls `visit` with each row's rowid and record, in rowid order, from
    /// the b-tree rooted at page `root`, until it answers [`Flow::Stop`].
    pub(super) fn run<E>(
        &mut self,
        root: u32,
        visit: &mut dyn FnMut(i64, &Record<'_>) -> Result<Flow, E>,
    ) -> Result<(), PageError<E>> {
        self.walk(root, 0, visit).map(|_| ())
    }

    fn walk<E>(
        &mut self,
        page: u32,
        depth: usize,
        visit: &mut dyn FnMut(i64, &Record<'_>) -> Result<Flow, E>,
    ) -> Result<Flow, PageError<E>> {
        let bad = |what| PageError::Malformed { page, what };
        if depth >= MAX_DEPTH {
            return Err(bad("b-tree deeper than SQLite builds (a page cycle)"));
        }
        if self.pages.len() <= depth {
            self.pages.resize_with(depth + 1, Vec::new);
        }
        let mut buf = std::mem::take(&mut self.pages[depth]);
        let flow = self
            .fetch(page, &mut buf)
            .and_then(|mapped| self.page(page, mapped.unwrap_or(&buf), depth, visit));
        self.pages[depth] = buf;
        flow
    }

    /// Reads `page`, once per walk, and only inside the file: in place from
    /// the mapping when there is one, otherwise into `buf`.
    fn fetch<E>(&mut self, page: u32, buf: &mut Vec<u8>) -> Result<Option<&'f [u8]>, PageError<E>> {
        let bad = |what| PageError::Malformed { page, what };
        if self.file.pages.is_some_and(|n| page > n) {
            return Err(bad("page number past the end of the file"));
        }
        let file: &'f PageFile<'c> = self.file;
        let mapped = file.mapped(page);
        if mapped.is_none() {
            self.ahead.read(self.file, page, buf)?;
        }
        // Marked after the read, which refuses a page number past the end
        // of the file before a bit for it is set aside.
        if !self.visited.first_visit(page) {
            return Err(bad("page reached twice (a page cycle)"));
        }
        Ok(mapped)
    }

    fn page<E>(
        &mut self,
        page: u32,
        buf: &[u8],
        depth: usize,
        visit: &mut dyn FnMut(i64, &Record<'_>) -> Result<Flow, E>,
    ) -> Result<Flow, PageError<E>> {
        let bad = |what| PageError::Malformed { page, what };
        // Page 1 opens with the 100-byte file header.
        let start = if page == 1 { 100 } else { 0 };
        let usable = self.file.usable;
        let kind = *buf.get(start).ok_or(bad("page header"))?;
        let cells = be_u16(buf, start + 3).ok_or(bad("page header"))?;
        let cell_at = |i: usize, header: usize| -> Result<usize, PageError<E>> {
            let at = be_u16(buf, start + header + 2 * i).ok_or(bad("cell pointer array"))?;
            if at >= usable {
                return Err(bad("cell pointer past the page"));
            }
            Ok(at)
        };
        match kind {
            // Interior table page: cells of (left child, key), then the
            // rightmost child; a child holds keys up to its cell's key.
            0x05 => {
                for i in 0..cells {
                    let at = cell_at(i, 12)?;
                    let child = be_u32(buf, at).ok_or(bad("interior cell"))?;
                    let (key, _) = buf
                        .get(at + 4..)
                        .and_then(varint)
                        .ok_or(bad("interior cell"))?;
                    let key = key as i64;
                    if self.after.is_some_and(|a| key <= a) {
                        continue;
                    }
                    if self.walk(child, depth + 1, visit)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                    if self.through.is_some_and(|t| key >= t) {
                        return Ok(Flow::Stop);
                    }
                }
                let right = be_u32(buf, start + 8).ok_or(bad("page header"))?;
                self.walk(right, depth + 1, visit)
            }
            // Leaf table page: cells of (payload size, rowid, payload).
            0x0D => {
                for i in 0..cells {
                    let at = cell_at(i, 8)?;
                    let cell = &buf[at..usable];
                    let (size, n1) = varint(cell).ok_or(bad("leaf cell"))?;
                    let (rowid, n2) = cell.get(n1..).and_then(varint).ok_or(bad("leaf cell"))?;
                    let rowid = rowid as i64;
                    if self.last_rowid.is_some_and(|l| rowid <= l) {
                        return Err(bad("rowids out of order"));
                    }
                    self.last_rowid = Some(rowid);
                    if self.after.is_some_and(|a| rowid <= a) {
                        continue;
                    }
                    if self.through.is_some_and(|t| rowid > t) {
                        return Ok(Flow::Stop);
                    }
                    // No record outgrows SQLite's 2^31-byte limit, nor the file.
                    let most = self
                        .file
                        .pages
                        .map_or(u64::MAX, |n| u64::from(n) * usable as u64)
                        .min(i32::MAX as u64);
                    if size > most {
                        return Err(bad("payload larger than the file"));
                    }
                    let size = usize::try_from(size).map_err(|_| bad("payload size"))?;
                    if !self.records {
                        let record = Record {
                            body: &[],
                            cols: &[],
                        };
                        if visit(rowid, &record).map_err(PageError::Visit)? == Flow::Stop {
                            return Ok(Flow::Stop);
                        }
                        continue;
                    }
                    let local = self.local_payload(size);
                    let body_at = n1 + n2;
                    let inline = cell.get(body_at..body_at + local).ok_or(bad("leaf cell"))?;
                    let payload: &[u8] = if local == size {
                        inline
                    } else {
                        let first = be_u32(cell, body_at + local).ok_or(bad("leaf cell"))?;
                        self.reassemble(inline, first, size)?;
                        &self.spill
                    };
                    let cols = parse_header(payload, &mut self.cols).ok_or(bad("record"))?;
                    let record = Record {
                        body: payload,
                        cols,
                    };
                    if visit(rowid, &record).map_err(PageError::Visit)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
                Ok(Flow::Go)
            }
            _ => Err(bad("not a table b-tree page")),
        }
    }

    /// Bytes of a payload of `size` bytes kept on a table leaf page (the
    /// rest goes to overflow pages), by SQLite's file-format rule.
    fn local_payload(&self, size: usize) -> usize {
        let u = self.file.usable;
        let max_local = u - 35;
        if size <= max_local {
            return size;
        }
        let min_local = (u - 12) * 32 / 255 - 23;
        let k = min_local + (size - min_local) % (u - 4);
        if k <= max_local {
            k
        } else {
            min_local
        }
    }

    /// Puts a spilled payload together in `self.spill`: `inline` from the
    /// leaf, then the chain of overflow pages from `first`.
    fn reassemble<E>(
        &mut self,
        inline: &[u8],
        first: u32,
        size: usize,
    ) -> Result<(), PageError<E>> {
        self.spill.clear();
        self.spill.extend_from_slice(inline);
        let mut next = first;
        let room = self.file.usable - 4;
        while self.spill.len() < size {
            let page = next;
            if page == 0 {
                return Err(PageError::Malformed {
                    page,
                    what: "overflow chain ends early",
                });
            }
            let mut buf = std::mem::take(&mut self.overflow);
            let mapped = match self.fetch(page, &mut buf) {
                Ok(m) => m,
                Err(e) => {
                    self.overflow = buf;
                    return Err(e);
                }
            };
            let data = mapped.unwrap_or(&buf);
            next = be_u32(data, 0).unwrap_or(0);
            let take = room.min(size - self.spill.len());
            self.spill.extend_from_slice(&data[4..4 + take]);
            self.overflow = buf;
        }
        Ok(())
    }
}

/// Parses a record header into `cols` (serial type and body offset of each
/// value), checking every value lies inside `payload`.
fn parse_header<'c>(payload: &[u8], cols: &'c mut Vec<(u64, usize)>) -> Option<&'c [(u64, usize)]> {
    cols.clear();
    let (header_len, mut at) = varint(payload)?;
    let header_len = usize::try_from(header_len).ok()?;
    if header_len > payload.len() {
        return None;
    }
    let mut body = header_len;
    while at < header_len {
        let (ty, n) = varint(payload.get(at..header_len)?)?;
        at += n;
        let len = serial_len(ty)?;
        cols.push((ty, body));
        body = body.checked_add(len)?;
    }
    if body > payload.len() {
        return None;
    }
    Some(cols)
}

#[cfg(test)]
mod tests {
    use super::file::RELEASE_EVERY_BYTES;
    use super::*;
    use crate::source::sqlite::scratch::Db;
    use rusqlite::{ffi, Connection};

    fn mmap_limit(conn: &Connection) -> i64 {
        let mut limit: i64 = -1;
        // SAFETY: a live connection; MMAP_SIZE with -1 only reads the limit.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_MMAP_SIZE,
                (&mut limit as *mut i64).cast(),
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        limit
    }

    /// Pages come from the VFS's mapping, byte for byte what a read gives,
    /// and the mapping is given back (its limit as before) afterwards.
    #[test]
    fn mapped_pages_equal_read_pages() {
        for page_size in [512, 4096, 65536] {
            let db = Db::with(
                "mapped",
                &format!(
                    "PRAGMA page_size = {page_size}; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                     INSERT INTO t SELECT i, printf('%0200d', i) FROM n;"
                ),
            );
            let conn = Connection::open(&db.0).expect("open");
            conn.execute_batch("BEGIN; SELECT count(*) FROM t;")
                .expect("begin");
            let before = mmap_limit(&conn);
            {
                let file = PageFile::open(&conn).expect("page file");
                assert!(file.map.is_some(), "page size {page_size}: not mapped");
                let pages = file.pages.expect("page count");
                assert!(pages > 2);
                let mut buf = Vec::new();
                for p in 1..=pages {
                    file.read_page::<()>(p, &mut buf).expect("read");
                    assert_eq!(file.mapped(p), Some(&buf[..]), "page {p}");
                }
                // Past the point where the mapping's memory is given back,
                // pages still read as they are.
                let first = file.mapped(1).expect("page 1").to_vec();
                for _ in 0..RELEASE_EVERY_BYTES / page_size + 2 {
                    assert_eq!(file.mapped(1), Some(&first[..]));
                }
                assert_eq!(file.mapped(pages + 1), None);
                assert_eq!(file.mapped(0), None);
            }
            assert_eq!(mmap_limit(&conn), before);
            conn.execute_batch("COMMIT").expect("end");
        }
    }

    #[test]
    fn varints_decode() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
    }

    #[test]
    fn header_out_of_bounds_is_refused() {
        let mut cols = Vec::new();
        // Header of 3 bytes: a 2-byte integer and a 3-byte text, body 5
        // bytes, but only 4 given.
        assert!(parse_header(&[3, 2, 19, 0, 1, b'a', b'b'], &mut cols).is_none());
        let r = parse_header(&[3, 2, 19, 0, 1, b'a', b'b', b'c'], &mut cols).unwrap();
        assert_eq!(r, &[(2, 3), (19, 5)]);
        // Reserved serial types take no bytes and read as NULL.
        let r = parse_header(&[2, 10], &mut cols).unwrap();
        assert_eq!(r, &[(10, 2)]);
    }

    #[test]
    fn values_decode_like_sqlite() {
        let mut cols = Vec::new();
        // int8 -1, 24-bit -2, 48-bit 2^40, float 1.5, zero, one, blob, NaN.
        let mut p = vec![9, 1, 3, 5, 7, 8, 9, 16, 7];
        p.push(0xff);
        p.extend_from_slice(&[0xff, 0xff, 0xfe]);
        p.extend_from_slice(&[0x01, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        p.extend_from_slice(&[1, 2]);
        p.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
        let cols = parse_header(&p, &mut cols).unwrap();
        let r = Record { body: &p, cols };
        assert_eq!(r.cols.len(), 8);
        assert_eq!(r.get(0), Some(ValueRef::Integer(-1)));
        assert_eq!(r.get(1), Some(ValueRef::Integer(-2)));
        assert_eq!(r.get(2), Some(ValueRef::Integer(1 << 40)));
        assert_eq!(r.get(3), Some(ValueRef::Real(1.5)));
        assert_eq!(r.get(4), Some(ValueRef::Integer(0)));
        assert_eq!(r.get(5), Some(ValueRef::Integer(1)));
        assert_eq!(r.get(6), Some(ValueRef::Blob(&[1, 2])));
        assert_eq!(r.get(7), Some(ValueRef::Null));
        assert_eq!(r.get(8), None);
    }
}
