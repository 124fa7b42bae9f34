//! Typed, null-aware access to a record batch's columns by name, for the
//! readers that turn table rows back into structs (the model registry, the
//! run history). A missing column or one of another type is an error that
//! names it; a null where a value is needed is the caller's to judge (a
//! corrupt row is skipped with a reason, never a panic).

use deltalake::arrow::array::{
    Array, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};

/// A column was missing or not of the type the catalog gives it.
#[derive(Debug, thiserror::Error)]
#[error("column `{column}` missing or not {expected}")]
pub struct Error {
    /// The column.
    pub column: String,
    /// The type it should have.
    pub expected: &'static str,
}

/// One batch, read by column name.
pub struct Columns<'b> {
    batch: &'b RecordBatch,
}

fn typed<'b, T: 'static>(
    batch: &'b RecordBatch,
    name: &str,
    expected: &'static str,
) -> Result<&'b T, Error> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| Error {
            column: name.to_string(),
            expected,
        })
}

impl<'b> Columns<'b> {
    /// Wraps `batch`.
    pub fn new(batch: &'b RecordBatch) -> Self {
        Columns { batch }
    }

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// A string column's value at `row` (None: null).
    pub fn str(&self, name: &str, row: usize) -> Result<Option<&'b str>, Error> {
        let c = typed::<StringArray>(self.batch, name, "string")?;
        Ok((!c.is_null(row)).then(|| c.value(row)))
    }

    /// A long column's value.
    pub fn i64(&self, name: &str, row: usize) -> Result<Option<i64>, Error> {
        let c = typed::<Int64Array>(self.batch, name, "long")?;
        Ok((!c.is_null(row)).then(|| c.value(row)))
    }

    /// An int column's value.
    pub fn i32(&self, name: &str, row: usize) -> Result<Option<i32>, Error> {
        let c = typed::<Int32Array>(self.batch, name, "int")?;
        Ok((!c.is_null(row)).then(|| c.value(row)))
    }

    /// A double column's value.
    pub fn f64(&self, name: &str, row: usize) -> Result<Option<f64>, Error> {
        let c = typed::<Float64Array>(self.batch, name, "double")?;
        Ok((!c.is_null(row)).then(|| c.value(row)))
    }

    /// A boolean column's value.
    pub fn bool(&self, name: &str, row: usize) -> Result<Option<bool>, Error> {
        let c = typed::<BooleanArray>(self.batch, name, "boolean")?;
        Ok((!c.is_null(row)).then(|| c.value(row)))
    }

    /// A timestamp column's value, as epoch ms (instants before 1970 are null).
    pub fn ms(&self, name: &str, row: usize) -> Result<Option<u64>, Error> {
        let c = typed::<TimestampMicrosecondArray>(self.batch, name, "timestamp")?;
        Ok((!c.is_null(row))
            .then(|| u64::try_from(c.value(row) / 1_000).ok())
            .flatten())
    }
}
