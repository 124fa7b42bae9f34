//! How a warehouse table is defined: once, as a list of columns, each with
//! its name, type, nullability, meaning and the function that reads it from
//! the dataflow output the table stores. The writer (Arrow schema and record
//! batches), `tables list/show`, compaction, the README's table of columns
//! and the tests all read these definitions; nothing else lists columns.
//!
//! Types are few on purpose: strings, 32/64-bit integers, doubles,
//! booleans, `timestamp` (µs, UTC; read from epoch ms) and `date` (the UTC
//! day of an epoch-ms instant, the partition column). A getter returning a
//! cell of the wrong type, or a null in a non-null column, is a
//! [`super::Error::Column`], never a panic.

use std::sync::Arc;

use dataflows::num::utc_day;
use dataflows::{Delivery, Output};
use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{Error, Result};

/// A column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 string.
    Utf8,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// IEEE-754 double.
    Float64,
    /// Boolean.
    Bool,
    /// An instant: `timestamp` with µs precision in UTC, read from epoch ms.
    Timestamp,
    /// A UTC calendar day (`date`), read from an epoch-ms instant inside it.
    Date,
}

impl Kind {
    /// The Arrow type written to Delta.
    pub fn arrow(self) -> DataType {
        match self {
            Kind::Utf8 => DataType::Utf8,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Date => DataType::Date32,
        }
    }

    /// The type as the README and `tables` name it.
    pub fn sql(self) -> &'static str {
        match self {
            Kind::Utf8 => "string",
            Kind::Int32 => "int",
            Kind::Int64 => "long",
            Kind::Float64 => "double",
            Kind::Bool => "boolean",
            Kind::Timestamp => "timestamp",
            Kind::Date => "date",
        }
    }
}

/// One value read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    /// A string.
    Str(&'a str),
    /// A string made for the cell (e.g. a JSON rendering of a field).
    Text(String),
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A double.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// An instant, epoch ms.
    Ms(u64),
    /// SQL NULL (only in nullable columns).
    Null,
}

impl<'a> Cell<'a> {
    /// `Null` for `None`, else what `f` makes of the value.
    pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Cell<'a>) -> Cell<'a> {
        v.map_or(Cell::Null, f)
    }
}

type Getter<R> = Box<dyn for<'a> Fn(&'a R) -> Cell<'a> + Send + Sync>;

/// One column of a table whose rows are `R`.
pub struct Column<R> {
    /// Column name.
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// May it be null?
    pub nullable: bool,
    /// What it means.
    pub doc: &'static str,
    get: Getter<R>,
}

impl<R> Column<R> {
    /// A non-null column.
    pub fn new(
        name: &'static str,
        kind: Kind,
        doc: &'static str,
        get: impl for<'a> Fn(&'a R) -> Cell<'a> + Send + Sync + 'static,
    ) -> Self {
        Column {
            name,
            kind,
            nullable: false,
            doc,
            get: Box::new(get),
        }
    }

    /// A nullable column.
    pub fn nullable(
        name: &'static str,
        kind: Kind,
        doc: &'static str,
        get: impl for<'a> Fn(&'a R) -> Cell<'a> + Send + Sync + 'static,
    ) -> Self {
        Column {
            nullable: true,
            ..Column::new(name, kind, doc, get)
        }
    }
}

/// A column's description, without its getter (for listings and docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name.
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// May it be null?
    pub nullable: bool,
    /// What it means.
    pub doc: &'static str,
}

/// A table whose rows are the dataflow outputs `select` picks, one row per
/// output inserted at a delivery (retractions are never written: the tables
/// are logs). A table the orchestrator writes (`job_runs`) selects nothing
/// from deliveries and is written with [`TableDef::batch_of`].
pub struct TableDef<R: 'static> {
    /// Table name (its directory under the warehouse root).
    pub name: &'static str,
    /// What a row is.
    pub doc: &'static str,
    /// The columns, partition column included.
    pub columns: Vec<Column<R>>,
    /// The partition column (a [`Kind::Date`] column).
    pub partition: &'static str,
    /// The outputs that are rows of this table.
    pub select: fn(&Output) -> Option<&R>,
}

/// A table definition, whatever its row type: what the writer, the readers
/// and the docs use.
pub trait Table: Send + Sync {
    /// Table name.
    fn name(&self) -> &'static str;
    /// What a row is.
    fn doc(&self) -> &'static str;
    /// The columns.
    fn columns(&self) -> Vec<ColumnInfo>;
    /// The partition column.
    fn partition(&self) -> &'static str;
    /// The Arrow schema written to Delta.
    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|c| Field::new(c.name, c.kind.arrow(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }
    /// How many rows `deliveries` hold for this table.
    fn count(&self, deliveries: &[&Delivery]) -> usize;
    /// The record batch of this table's rows in `deliveries`, in order.
    fn batch(&self, deliveries: &[&Delivery]) -> Result<RecordBatch>;
}

impl<R: Send + Sync + 'static> TableDef<R> {
    /// The record batch of `rows`, in order: how rows that do not come
    /// from the dataflow (the orchestrator's) are written.
    pub fn batch_of(&self, rows: &[&R]) -> Result<RecordBatch> {
        let columns = self
            .columns
            .iter()
            .map(|c| self.array(c, rows))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }

    fn rows<'d>(&self, deliveries: &[&'d Delivery]) -> Vec<&'d R> {
        deliveries
            .iter()
            .flat_map(|d| d.inserted())
            .filter_map(self.select)
            .collect()
    }

    fn array(&self, column: &Column<R>, rows: &[&R]) -> Result<ArrayRef> {
        let wrong = |cell: &Cell<'_>| Error::Column {
            table: self.name,
            column: column.name,
            detail: format!("a {:?} column got {cell:?}", column.kind),
        };
        let n = rows.len();
        macro_rules! build {
            ($builder:expr, $($pat:pat => $value:expr),+) => {{
                let mut b = $builder;
                for row in rows {
                    match (column.get)(row) {
                        $($pat => b.append_value($value),)+
                        Cell::Null if column.nullable => b.append_null(),
                        other => return Err(wrong(&other)),
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }};
        }
        Ok(match column.kind {
            Kind::Utf8 => {
                build!(StringBuilder::with_capacity(n, n * 8), Cell::Str(s) => s, Cell::Text(s) => s)
            }
            Kind::Int32 => build!(Int32Builder::with_capacity(n), Cell::I32(v) => v),
            Kind::Int64 => build!(Int64Builder::with_capacity(n), Cell::I64(v) => v),
            Kind::Float64 => build!(Float64Builder::with_capacity(n), Cell::F64(v) => v),
            Kind::Bool => build!(BooleanBuilder::with_capacity(n), Cell::Bool(v) => v),
            Kind::Timestamp => build!(
                TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
                Cell::Ms(ms) => (ms as i64).saturating_mul(1_000)
            ),
            Kind::Date => build!(Date32Builder::with_capacity(n), Cell::Ms(ms) => utc_day(ms)),
        })
    }
}

impl<R: Send + Sync + 'static> Table for TableDef<R> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn doc(&self) -> &'static str {
        self.doc
    }

    fn columns(&self) -> Vec<ColumnInfo> {
        self.columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name,
                kind: c.kind,
                nullable: c.nullable,
                doc: c.doc,
            })
            .collect()
    }

    fn partition(&self) -> &'static str {
        self.partition
    }

    fn count(&self, deliveries: &[&Delivery]) -> usize {
        deliveries
            .iter()
            .flat_map(|d| d.inserted())
            .filter(|o| (self.select)(o).is_some())
            .count()
    }

    fn batch(&self, deliveries: &[&Delivery]) -> Result<RecordBatch> {
        self.batch_of(&self.rows(deliveries))
    }
}
