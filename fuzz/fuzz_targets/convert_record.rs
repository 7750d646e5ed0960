//! Fuzzes record format conversion (`hydrant_sinks::convert`): an arbitrary Hive type string as
//! the schema of one column (beside a `string` column) and arbitrary bytes as the record. The
//! type either parses or is refused; a record either converts into one Parquet or ORC file (flag
//! bit 3) holding its rows or comes back as one failed record with a message. Never a panic, never both, never
//! neither. And the fast path ([`direct`]) either declines the record or appends exactly the
//! arrays the row path gives.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use hydrant_sinks::convert::columns::Columns;
use hydrant_sinks::convert::deserializer::KeyMemo;
use hydrant_sinks::convert::direct;
use hydrant_sinks::convert::hive::HiveType;
use hydrant_sinks::convert::{Column, Converter, DataCatalogTable, SchemaSource, Settings};
use hydrant_sinks::{Record, SinkError};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Fixed(Vec<Column>);

impl SchemaSource for Fixed {
    fn columns(&self) -> Result<Vec<Column>, SinkError> {
        Ok(self.0.clone())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let (type_text, record) = (&rest[..split], rest.get(split + 1..).unwrap_or(&[]));
    let Ok(type_text) = std::str::from_utf8(type_text) else {
        return;
    };
    let Ok(ty) = HiveType::parse(type_text) else {
        return;
    };
    // What parses prints back to a type string that parses to the same type.
    assert_eq!(HiveType::parse(&ty.to_string()).ok().as_ref(), Some(&ty));
    let deserializer = if flags & 1 == 0 {
        serde_json::json!({"OpenXJsonSerDe": {
            "CaseInsensitive": flags & 2 == 0,
            "ConvertDotsInJsonKeysToUnderscores": flags & 4 != 0,
            "ColumnToJsonKeyMappings": {"d": "c.d"}}})
    } else {
        serde_json::json!({"HiveJsonSerDe": {"TimestampFormats": ["yyyy-MM-dd'T'HH:mm", "millis"]}})
    };
    let serializer = if flags & 8 == 0 {
        serde_json::json!({"ParquetSerDe": {}})
    } else {
        serde_json::json!({"OrcSerDe": {"Compression": "ZLIB"}})
    };
    let Ok(Some(settings)) = Settings::from_firehose(&serde_json::json!({
        "SchemaConfiguration": {"DatabaseName": "fuzz", "TableName": "t"},
        "InputFormatConfiguration": {"Deserializer": deserializer},
        "OutputFormatConfiguration": {"Serializer": serializer}
    })) else {
        panic!("the fuzz target's settings are valid");
    };
    let table = DataCatalogTable::new(&settings, "000000000000", "us-east-1");
    let columns = vec![("c".to_string(), ty), ("d".to_string(), HiveType::String)];
    let converter = Converter::new(settings, table, Arc::new(Fixed(columns)));
    let records = [Record {
        lsn: 1,
        sub: 0,
        arrival_ms: 0,
        data: Bytes::copy_from_slice(record),
    }];
    // The fast path appends exactly what the row path types, or declines the record.
    if let Ok(table) = converter.table() {
        let mut fast = Columns::new(&table.columns);
        let mut memo = KeyMemo::default();
        let took = direct::append_record(record, &converter.settings().deserializer, &table.keys, &mut memo, &mut fast);
        if took.is_ok() {
            let rows = converter.rows(&table, record);
            let Ok(rows) = rows else {
                panic!("the fast path took a record the row path fails: {rows:?}");
            };
            let mut slow = Columns::new(&table.columns);
            for row in rows {
                for (i, cell) in row.into_iter().enumerate() {
                    slow.push_cell(i, cell);
                }
                slow.end_row();
            }
            // Again with the memo of the first reading: the same row.
            let mut again = Columns::new(&table.columns);
            let took_again = direct::append_record(record, &converter.settings().deserializer, &table.keys, &mut memo, &mut again);
            assert_eq!(took_again, took, "the memo changes nothing");
            let fast = fast.finish().ok();
            assert_eq!(again.finish().ok(), fast, "the memo changes nothing");
            assert_eq!(fast, slow.finish().ok(), "both paths, the same arrays");
        }
    }
    match converter.convert(&records) {
        Ok(c) => {
            assert_eq!(c.records + c.failed.len() as u64, 1);
            assert_eq!(c.body.is_some(), c.records == 1);
            if c.records == 1 {
                assert!(c.rows >= 1);
            } else {
                assert!(!c.failed[0].error_message.is_empty());
            }
        }
        // Only the writer may fail (an Arrow limit), never with a panic.
        Err(e) => assert!(e.to_string().contains("DataFormatConversion"), "{e}"),
    }
});
