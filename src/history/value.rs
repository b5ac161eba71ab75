//! The values the history's statements bind and return, on either store
//! (`db` runs them): arguments ([`Param`], given with
//! [`args!`](crate::args) as rusqlite's `params!`), rows of [`Cell`]s read
//! with `r.get(i)` as rusqlite's, and the one error type.

use rusqlite::types::{ToSqlOutput, ValueRef};

/// A statement that failed, on either store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The server's or the driver's message, passwords scrubbed.
    #[error("{0}")]
    Postgres(String),
    /// A value of another type than the code reads.
    #[error("{0}")]
    Decode(String),
    /// `query_row` found no row.
    #[error("the query returned no row")]
    NoRow,
}

/// The type of a NULL argument: PostgreSQL wants to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Real,
    Text,
}

/// One bound argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Null(Ty),
    Int(i64),
    Real(f64),
    Text(String),
}

/// A Rust value that binds as an argument (what [`args!`](crate::args)
/// takes).
pub trait ToParam {
    fn to_param(&self) -> Param;
}

/// The SQL type of a Rust type, for its `None`.
pub trait SqlType {
    const TY: Ty;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Param {
                Param::Int(i64::from(*self))
            }
        }
        impl SqlType for $t {
            const TY: Ty = Ty::Int;
        }
    )*};
}
int_param!(i64, i32, u32, bool);

impl ToParam for f64 {
    fn to_param(&self) -> Param {
        Param::Real(*self)
    }
}
impl SqlType for f64 {
    const TY: Ty = Ty::Real;
}
impl ToParam for str {
    fn to_param(&self) -> Param {
        Param::Text(self.to_string())
    }
}
impl SqlType for str {
    const TY: Ty = Ty::Text;
}
impl ToParam for String {
    fn to_param(&self) -> Param {
        Param::Text(self.clone())
    }
}
impl SqlType for String {
    const TY: Ty = Ty::Text;
}
impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param {
        (**self).to_param()
    }
}
impl<T: SqlType + ?Sized> SqlType for &T {
    const TY: Ty = T::TY;
}
impl<T: ToParam + SqlType> ToParam for Option<T> {
    fn to_param(&self) -> Param {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null(T::TY),
        }
    }
}
impl ToParam for Param {
    fn to_param(&self) -> Param {
        self.clone()
    }
}

/// Arguments for a statement, like rusqlite's `params!`:
/// `db.execute("… WHERE id = $1 AND alert = $2", args![id, alert])`.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::history::value::Param] };
    ($($x:expr),+ $(,)?) => {
        &[$($crate::history::value::ToParam::to_param(&$x)),+] as &[$crate::history::value::Param]
    };
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Null(_) => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Param::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Param::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// One value of a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One result row, read by column position.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub Vec<Cell>);

/// A column position (a trait, as rusqlite's, so that `r.get::<_, T>(i)`
/// reads the same).
pub trait RowIndex {
    fn index(self) -> usize;
}
impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

impl Row {
    /// The value of column `i` as a `T`.
    pub fn get<I: RowIndex, T: FromCell>(&self, i: I) -> Result<T, DbError> {
        let i = i.index();
        let cell = self
            .0
            .get(i)
            .ok_or_else(|| DbError::Decode(format!("no column {i} in the row")))?;
        T::from_cell(cell).ok_or_else(|| {
            DbError::Decode(format!(
                "column {i} holds {cell:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// A Rust type a [`Cell`] reads as.
pub trait FromCell: Sized {
    fn from_cell(c: &Cell) -> Option<Self>;
}
impl FromCell for i64 {
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromCell for f64 {
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Real(f) => Some(*f),
            // SQLite keeps a whole REAL as an integer when asked to.
            Cell::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromCell for bool {
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}
impl FromCell for String {
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Null => Some(None),
            c => T::from_cell(c).map(Some),
        }
    }
}
