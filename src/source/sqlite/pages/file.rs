//! The database file under one connection, read page by page: through the
//! VFS's own memory mapping where it covers the page, otherwise with its
//! `xRead`, reading runs of consecutive pages ahead. What the pages hold is
//! read in [`pages`](super).

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;

use rusqlite::ffi;
use rusqlite::Connection;

/// Something the page reader could not get past.
#[derive(Debug)]
pub(crate) enum PageError<E> {
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
pub(crate) struct PageFile<'c> {
    pub(super) file: *mut ffi::sqlite3_file,
    pub(super) read: unsafe extern "C" fn(
        *mut ffi::sqlite3_file,
        *mut c_void,
        c_int,
        ffi::sqlite3_int64,
    ) -> c_int,
    pub(super) page_size: usize,
    /// Bytes of each page the b-tree uses (the rest is reserved for
    /// extensions such as checksums).
    pub(super) usable: usize,
    /// Pages in the file, when the header's count is current (it is unless
    /// a very old SQLite wrote last): a bound for page numbers, payload
    /// sizes and reading ahead.
    pub(super) pages: Option<u32>,
    /// The file mapped in memory by the VFS, while this reader holds it.
    pub(super) map: Option<Map>,
    pub(super) _conn: PhantomData<&'c Connection>,
}

type FileControl = unsafe extern "C" fn(*mut ffi::sqlite3_file, c_int, *mut c_void) -> c_int;
type Unfetch =
    unsafe extern "C" fn(*mut ffi::sqlite3_file, ffi::sqlite3_int64, *mut c_void) -> c_int;

/// A reference to the VFS's mapping of the file's first `len` bytes
/// (`xFetch`), given back on drop (`xUnfetch`) with the file's mapping limit
/// as it was.
pub(super) struct Map {
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
    pub(crate) fn open(conn: &'c Connection) -> Option<PageFile<'c>> {
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
    pub(super) fn mapped(&self, page: u32) -> Option<&[u8]> {
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
    pub(super) fn read_at<E>(
        &self,
        page: u32,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), PageError<E>> {
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

    pub(super) fn read_page<E>(&self, page: u32, buf: &mut Vec<u8>) -> Result<(), PageError<E>> {
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
pub(super) const RELEASE_EVERY_BYTES: usize = 32 * 1024 * 1024;

/// Most bytes read ahead in one call.
const READ_AHEAD_BYTES: usize = 256 * 1024;

/// Pages read ahead. A table filled in key order keeps its leaves one after
/// another in the file, so while a walk asks for page after page, runs of
/// pages are read in one call, doubling up to [`READ_AHEAD_BYTES`]; any
/// other request reads its one page. A call per page was a measurable
/// share of a scan.
#[derive(Default)]
pub(super) struct ReadAhead {
    data: Vec<u8>,
    first: u32,
    count: u32,
    last: u32,
    run: u32,
}

impl ReadAhead {
    pub(super) fn read<E>(
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
