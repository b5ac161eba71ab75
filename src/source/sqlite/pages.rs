//! Reading a rowid table straight from its b-tree pages.
//!
//! A scan reads every row, and SQLite's statement machinery (the VDBE, then
//! the column API once per value) was most of a scan's cost: a one-thread
//! tree build of 1M rows took 0.52 s through SQL and 0.33 s from the pages.
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

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;

use rusqlite::ffi;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// SQLite keeps b-trees at most 20 levels deep; deeper means a damaged file.
const MAX_DEPTH: usize = 24;

/// Something the page reader could not get past.
#[derive(Debug)]
pub(super) enum PageError<E> {
    /// The file is not what SQLite's format says it must be.
    Malformed { page: u32, what: &'static str },
    /// The VFS failed to read a page (SQLite result code).
    Read { page: u32, code: c_int },
    /// The row visitor failed; passed through as is.
    Visit(E),
}

impl<E> std::fmt::Display for PageError<E>
where
    E: std::fmt::Display,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Malformed { page, what } => write!(
                f,
                "page {page} is malformed ({what}); check the file with \
                 `sqlite3 FILE 'PRAGMA integrity_check'`"
            ),
            PageError::Read { page, code } => {
                write!(f, "reading page {page} failed (SQLite error code {code})")
            }
            PageError::Visit(e) => e.fmt(f),
        }
    }
}

/// The open database file of one connection, read page by page.
pub(super) struct PageFile<'c> {
    file: *mut ffi::sqlite3_file,
    read: unsafe extern "C" fn(
        *mut ffi::sqlite3_file,
        *mut c_void,
        c_int,
        ffi::sqlite3_int64,
    ) -> c_int,
    page_size: usize,
    /// Bytes of each page the b-tree uses (the rest is reserved for
    /// extensions such as checksums).
    usable: usize,
    /// Pages in the file, when the header's count is current (it is unless
    /// a very old SQLite wrote last): a bound for page numbers, payload
    /// sizes and reading ahead.
    pages: Option<u32>,
    /// The file mapped in memory by the VFS, while this reader holds it.
    map: Option<Map>,
    _conn: PhantomData<&'c Connection>,
}

type FileControl = unsafe extern "C" fn(*mut ffi::sqlite3_file, c_int, *mut c_void) -> c_int;
type Unfetch =
    unsafe extern "C" fn(*mut ffi::sqlite3_file, ffi::sqlite3_int64, *mut c_void) -> c_int;

/// A reference to the VFS's mapping of the file's first `len` bytes
/// (`xFetch`), given back on drop (`xUnfetch`) with the file's mapping limit
/// as it was.
struct Map {
    base: *const u8,
    len: usize,
    /// Pages handed out since the mapping last gave its memory back.
    handed: std::cell::Cell<usize>,
    unfetch: Unfetch,
    control: FileControl,
    old_limit: ffi::sqlite3_int64,
}

impl<'c> PageFile<'c> {
    /// The main database file of `conn`, which must be inside a read
    /// transaction that has read from it (so it holds its shared lock).
    /// `None` when pages cannot be read safely this way: no read transaction
    /// open, a WAL-mode file, a text encoding other than UTF-8, or a VFS
    /// without a file.
    pub(super) fn open(conn: &'c Connection) -> Option<PageFile<'c>> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: `handle` is the live connection `conn` borrows for 'c; the
        // file pointer SQLite hands back stays valid while the connection is
        // open and "main" attached, which outlives this borrow.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() {
            return None;
        }
        // The pages are the snapshot only inside a read transaction (its
        // shared lock keeps writers out); if SQLite ended it (an I/O error
        // rolls back), they are not.
        // SAFETY: as above.
        let txn = unsafe { ffi::sqlite3_txn_state(conn.handle(), c"main".as_ptr()) };
        if txn < ffi::SQLITE_TXN_READ {
            return None;
        }
        // SAFETY: a non-null file from FILE_POINTER is an open sqlite3_file.
        let methods = unsafe { (*file).pMethods };
        if methods.is_null() {
            return None;
        }
        // SAFETY: pMethods of an open file points at its VFS's method table.
        let read = unsafe { (*methods).xRead }?;
        let mut pf = PageFile {
            file,
            read,
            page_size: 0,
            usable: 0,
            pages: None,
            map: None,
            _conn: PhantomData,
        };
        let mut header = [0u8; 100];
        pf.read_at::<()>(1, 0, &mut header).ok()?;
        if &header[..16] != b"SQLite format 3\0" {
            return None;
        }
        // Write and read versions 1 mean a rollback journal; 2 means WAL.
        if header[18] != 1 || header[19] != 1 {
            return None;
        }
        // Text encoding 1 is UTF-8 (0 only in a file with no tables yet).
        if !matches!(
            u32::from_be_bytes([header[56], header[57], header[58], header[59]]),
            0 | 1
        ) {
            return None;
        }
        let page_size = match u16::from_be_bytes([header[16], header[17]]) {
            1 => 65536,
            n => usize::from(n),
        };
        if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
            return None;
        }
        let reserved = usize::from(header[20]);
        // SQLite requires at least 480 usable bytes.
        if page_size - reserved < 480 {
            return None;
        }
        pf.page_size = page_size;
        pf.usable = page_size - reserved;
        let word = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        // The count is current when the header's version-valid-for number
        // matches its change counter.
        pf.pages = (word(92) == word(24)).then(|| word(28)).filter(|&n| n > 0);
        // SAFETY: `methods` is the open file's method table (see above).
        pf.map = unsafe { pf.map_file(&*methods) };
        Some(pf)
    }

    /// Maps the file's pages through the VFS, when it can (version 3 VFS
    /// methods, memory mapping compiled in, the whole file under SQLite's
    /// limit and the header's page count current).
    ///
    /// # Safety
    /// `methods` must be the method table of `self.file`, which is open.
    unsafe fn map_file(&self, methods: &ffi::sqlite3_io_methods) -> Option<Map> {
        if methods.iVersion < 3 {
            return None;
        }
        let (control, fetch, unfetch) = (methods.xFileControl?, methods.xFetch?, methods.xUnfetch?);
        let len = usize::try_from(self.pages?)
            .ok()?
            .checked_mul(self.page_size)?;
        // xFetch wants 256 bytes of the mapping beyond what it hands out
        // (a cushion for reads of damaged pages), so the last 256 bytes of
        // the file are asked for implicitly; the mapping covers the file.
        let ask = c_int::try_from(len.checked_sub(256)?).ok()?;
        let mut limit: ffi::sqlite3_int64 = i64::MAX;
        // SAFETY: the file is open; MMAP_SIZE takes a pointer to an i64,
        // and writes the previous limit back through it.
        let rc = control(
            self.file,
            ffi::SQLITE_FCNTL_MMAP_SIZE,
            (&mut limit as *mut i64).cast(),
        );
        if rc != ffi::SQLITE_OK {
            return None;
        }
        let old_limit = limit;
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: the file is open; `p` receives a pointer into the mapping
        // or stays null.
        let rc = fetch(self.file, 0, ask, &mut p);
        if rc != ffi::SQLITE_OK || p.is_null() {
            let mut restore = old_limit;
            control(
                self.file,
                ffi::SQLITE_FCNTL_MMAP_SIZE,
                (&mut restore as *mut i64).cast(),
            );
            return None;
        }
        Some(Map {
            base: p.cast_const().cast(),
            len,
            handed: std::cell::Cell::new(0),
            unfetch,
            control,
            old_limit,
        })
    }

    /// Page `page` in place in the mapping, when it covers the page.
    fn mapped(&self, page: u32) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        let start = (page as usize).checked_sub(1)? * self.page_size;
        if start + self.page_size > map.len {
            return None;
        }
        // Mapped pages count as this process's memory until unmapped: let
        // the kernel drop them now and then (they are still in the page
        // cache, and fault back in if touched again), so a scan's resident
        // set stays small instead of growing to the file's size.
        map.handed.set(map.handed.get() + 1);
        if map.handed.get() * self.page_size >= RELEASE_EVERY_BYTES {
            map.handed.set(0);
            // SAFETY: the range is the mapping SQLite made and this reader
            // holds; MADV_DONTNEED on a shared file mapping keeps its
            // contents (they are the file's), only the page-table entries go.
            unsafe {
                libc::madvise(map.base.cast_mut().cast(), map.len, libc::MADV_DONTNEED);
            }
        }
        // SAFETY: the mapping holds `map.len` bytes of the file from `base`
        // for as long as this reader keeps its xFetch reference (until drop),
        // and no writer changes the file while the read transaction's shared
        // lock is held.
        Some(unsafe { std::slice::from_raw_parts(map.base.add(start), self.page_size) })
    }
    fn read_at<E>(&self, page: u32, offset: u64, buf: &mut [u8]) -> Result<(), PageError<E>> {
        let amt = c_int::try_from(buf.len()).map_err(|_| PageError::Malformed {
            page,
            what: "read too large",
        })?;
        let at = i64::try_from(offset).map_err(|_| PageError::Malformed {
            page,
            what: "page number out of range",
        })?;
        // SAFETY: `file` is open (see `open`), `buf` is writable for `amt`
        // bytes, and the connection is not used by another thread meanwhile
        // (`Connection` is not `Sync`, and this borrows it).
        let rc = unsafe { (self.read)(self.file, buf.as_mut_ptr().cast(), amt, at) };
        if rc != ffi::SQLITE_OK {
            return Err(PageError::Read { page, code: rc });
        }
        Ok(())
    }

    fn read_page<E>(&self, page: u32, buf: &mut Vec<u8>) -> Result<(), PageError<E>> {
        if page == 0 {
            return Err(PageError::Malformed {
                page,
                what: "page number 0",
            });
        }
        buf.resize(self.page_size, 0);
        let offset = u64::from(page - 1) * self.page_size as u64;
        self.read_at(page, offset, buf)
    }
}

impl Drop for PageFile<'_> {
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            // SAFETY: `base` came from xFetch at offset 0 on this open file
            // and is released once; with no reference left out, the old
            // limit (normally 0: no mapping) takes effect again.
            unsafe {
                (map.unfetch)(self.file, 0, map.base.cast_mut().cast());
                let mut limit = map.old_limit;
                (map.control)(
                    self.file,
                    ffi::SQLITE_FCNTL_MMAP_SIZE,
                    (&mut limit as *mut i64).cast(),
                );
            }
        }
    }
}

/// How much of a mapping is used between two releases of its memory.
const RELEASE_EVERY_BYTES: usize = 32 * 1024 * 1024;

/// Most bytes read ahead in one call.
const READ_AHEAD_BYTES: usize = 256 * 1024;

/// Pages read ahead. A table filled in key order keeps its leaves one after
/// another in the file, so while a walk asks for page after page, runs of
/// pages are read in one call, doubling up to [`READ_AHEAD_BYTES`]; any
/// other request reads its one page. A call per page was 5% of a scan.
#[derive(Default)]
struct ReadAhead {
    data: Vec<u8>,
    first: u32,
    count: u32,
    last: u32,
    run: u32,
}

impl ReadAhead {
    fn read<E>(
        &mut self,
        file: &PageFile<'_>,
        page: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), PageError<E>> {
        let size = file.page_size;
        let sequential = page != 0 && page == self.last.wrapping_add(1);
        self.last = page;
        if page >= self.first && page - self.first < self.count {
            let at = (page - self.first) as usize * size;
            out.clear();
            out.extend_from_slice(&self.data[at..at + size]);
            return Ok(());
        }
        let most = (READ_AHEAD_BYTES / size).max(1) as u32;
        self.run = if sequential {
            (self.run * 2).clamp(2, most)
        } else {
            1
        };
        // Never past the file's end (when the header says where it is).
        let run = match file.pages {
            Some(n) if page <= n => self.run.min(n - page + 1),
            _ => 1,
        };
        if run > 1 {
            self.data.resize(run as usize * size, 0);
            let offset = u64::from(page - 1) * size as u64;
            if file.read_at::<E>(page, offset, &mut self.data).is_ok() {
                self.first = page;
                self.count = run;
                out.clear();
                out.extend_from_slice(&self.data[..size]);
                return Ok(());
            }
            // Read what was asked for alone, which says what went wrong.
            self.count = 0;
        }
        file.read_page(page, out)
    }
}

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
    // store-forwarding stall that cost 6% of a scan.
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
fn varint(b: &[u8]) -> Option<(u64, usize)> {
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
        }
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
    use super::*;
    use crate::source::sqlite::scratch::Db;

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
