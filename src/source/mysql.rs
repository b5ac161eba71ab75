//! The MySQL connector (sqlx). Not written yet.

use super::{KeyBounds, RowSink, ScanSpec, Source, SourceError, TableSchema};

/// A read-only MySQL connection.
pub struct MySqlSource {
    url: String,
}

impl MySqlSource {
    pub fn connect(url: &str) -> Result<MySqlSource, SourceError> {
        Err(SourceError::BadUrl(format!(
            "{}: MySQL is not supported yet",
            super::url::redact(url)
        )))
    }
}

impl Source for MySqlSource {
    fn describe(&self) -> String {
        super::url::redact(&self.url)
    }
    fn tables(&mut self) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }
    fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError> {
        Err(SourceError::NoTable {
            table: table.into(),
            location: self.describe(),
        })
    }
    fn scan(
        &mut self,
        _: &ScanSpec,
        _: Option<&KeyBounds>,
        _: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        Ok(())
    }
}
