//! From a batch to rows: the batch's records concatenated are the "file" Redshift would `COPY`
//! (Firehose adds no delimiter between records), split into rows by the `CopyCommand`'s format
//! and written in PostgreSQL's `COPY` text format (tab-separated, `\N` for NULL, backslash
//! escapes), one line per row.
//!
//! Each row remembers the record it starts in (its source record, whose bytes go to the error
//! output if the row is bad) and its line number in the file (for the error message). A row that
//! cannot be parsed is a load error and is not sent; a row PostgreSQL rejects becomes one later
//! (see the sink).
//!
//! The first `COPY` of a large batch streams: the encoder hands over chunks of whole rows as it
//! goes (through a bounded channel), so PostgreSQL parses rows while the rest are encoded.
//!
//! Rows of records before `first_new` (already loaded by an earlier transaction) are parsed, so
//! line numbers and `IGNOREHEADER` are the same on every attempt, but neither sent nor counted.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::options::{CopyCommand, DataFormat};
use crate::Record;

/// A target column as the loader needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    /// The column's name as stored in the catalog.
    pub name: String,
    /// A character type (`text`, `varchar`, `char`, ...): empty fields stay empty strings unless
    /// `EMPTYASNULL`; other types load empty fields as NULL.
    pub is_text: bool,
    /// The declared length of a `varchar(n)` / `char(n)` column (`TRUNCATECOLUMNS`).
    pub max_chars: Option<usize>,
}

/// A row that could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadError {
    /// The index (in the batch) of the record the row starts in.
    pub record: usize,
    /// The row's line in the file (1-based).
    pub line: u64,
    /// The column at fault, if known.
    pub column: Option<String>,
    /// Why.
    pub reason: String,
}

/// One encoded row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EncodedRow {
    /// The index of the record the row starts in.
    pub record: usize,
    /// The row's line in the file (1-based).
    pub line: u64,
    /// Its bytes in [`Rows::data`], the final newline included.
    pub range: Range<usize>,
}

/// The batch as `COPY` text.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// Every encoded row, back to back.
    pub data: Bytes,
    /// The rows, in file order.
    pub rows: Vec<EncodedRow>,
    /// Rows that could not be parsed, in file order.
    pub errors: Vec<LoadError>,
}

/// Chunks handed to a streaming `COPY` hold at least this many bytes of whole rows.
pub(crate) const STREAM_CHUNK_BYTES: usize = 256 * 1024;

/// Encodes `records` (the whole batch) into rows for `columns`, skipping rows that start in
/// records before `first_new`. With `stream`, also sends the encoded rows in chunks of about
/// [`STREAM_CHUNK_BYTES`] as they are made (a blocking send: call it off the async workers);
/// when the receiver is gone, encoding goes on without sending.
pub(crate) fn encode(
    records: &[Record],
    first_new: usize,
    command: &CopyCommand,
    columns: &[Column],
    stream: Option<tokio::sync::mpsc::Sender<Bytes>>,
) -> Rows {
    let total: usize = records.iter().map(|r| r.data.len()).sum();
    let mut file = Vec::with_capacity(total);
    let mut starts = Vec::with_capacity(records.len());
    for record in records {
        starts.push(file.len());
        file.extend_from_slice(&record.data);
    }
    let first_new_offset = starts.get(first_new).copied().unwrap_or(file.len());
    let mut encoder = Encoder {
        command,
        columns,
        starts: &starts,
        first_new_offset,
        out: Vec::with_capacity(total + total / 8 + 64),
        rows: Vec::new(),
        errors: Vec::new(),
        stream,
        streamed: 0,
    };
    match command.format() {
        DataFormat::Text { delimiter } => encoder.text(&file, delimiter),
        DataFormat::Csv { delimiter, quote } => encoder.csv(&file, delimiter, quote),
        DataFormat::Json { ignore_case } => encoder.json(&file, ignore_case),
    }
    encoder.flush();
    Rows {
        data: Bytes::from(encoder.out),
        rows: encoder.rows,
        errors: encoder.errors,
    }
}

/// A field value before conversion.
enum Field<'a> {
    /// NULL.
    Null,
    /// Bytes from the file (not yet checked as UTF-8).
    Bytes(Cow<'a, [u8]>),
    /// A JSON string, number, boolean or nested value, already text.
    Text(Cow<'a, str>),
}

struct Encoder<'a> {
    command: &'a CopyCommand,
    columns: &'a [Column],
    starts: &'a [usize],
    first_new_offset: usize,
    out: Vec<u8>,
    rows: Vec<EncodedRow>,
    errors: Vec<LoadError>,
    /// Where finished rows are streamed to, if anywhere.
    stream: Option<tokio::sync::mpsc::Sender<Bytes>>,
    /// How much of `out` has been streamed.
    streamed: usize,
}

impl Encoder<'_> {
    /// Sends the rows finished since the last flush.
    fn flush(&mut self) {
        let Some(stream) = &self.stream else {
            return;
        };
        if self.out.len() > self.streamed {
            let chunk = Bytes::copy_from_slice(&self.out[self.streamed..]);
            if stream.blocking_send(chunk).is_err() {
                // The COPY ended early (it failed): the rows are still needed for a retry.
                self.stream = None;
            }
            self.streamed = self.out.len();
        }
    }

    /// The index of the record holding byte `offset` of the file.
    fn record_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// The offset of the first record starting after `offset` (or `end`).
    fn next_record_start(&self, offset: usize, end: usize) -> usize {
        let index = self.starts.partition_point(|&start| start <= offset);
        self.starts.get(index).copied().unwrap_or(end)
    }

    fn error(&mut self, offset: usize, line: u64, column: Option<String>, reason: String) {
        if offset < self.first_new_offset {
            return;
        }
        self.errors.push(LoadError {
            record: self.record_of(offset),
            line,
            column,
            reason,
        });
    }

    /// Writes one row of `fields` (one per column) or files a load error.
    fn row<'f>(&mut self, offset: usize, line: u64, fields: impl IntoIterator<Item = Field<'f>>) {
        if offset < self.first_new_offset {
            return;
        }
        let start = self.out.len();
        let mut count = 0;
        for field in fields {
            let Some(column) = self.columns.get(count) else {
                count += 1;
                break;
            };
            if count > 0 {
                self.out.push(b'\t');
            }
            count += 1;
            if let Err(reason) = self.value(column, field) {
                self.out.truncate(start);
                let name = column.name.clone();
                self.error(offset, line, Some(name), reason);
                return;
            }
        }
        if count != self.columns.len() {
            self.out.truncate(start);
            let reason = if count < self.columns.len() {
                "Delimiter not found (fewer fields than columns)"
            } else {
                "Extra column(s) found"
            };
            self.error(offset, line, None, reason.to_string());
            return;
        }
        self.out.push(b'\n');
        let record = self.record_of(offset);
        self.rows.push(EncodedRow {
            record,
            line,
            range: start..self.out.len(),
        });
        if self.out.len() - self.streamed >= STREAM_CHUNK_BYTES {
            self.flush();
        }
    }

    /// Converts and escapes one field into the output.
    fn value(&mut self, column: &Column, field: Field<'_>) -> Result<(), String> {
        let text: Cow<'_, str> = match field {
            Field::Null => {
                self.out.extend_from_slice(b"\\N");
                return Ok(());
            }
            Field::Text(text) => text,
            Field::Bytes(Cow::Borrowed(bytes)) => Cow::Borrowed(
                std::str::from_utf8(bytes).map_err(|_| "Invalid UTF8 character".to_string())?,
            ),
            Field::Bytes(Cow::Owned(bytes)) => Cow::Owned(
                String::from_utf8(bytes).map_err(|_| "Invalid UTF8 character".to_string())?,
            ),
        };
        let command = self.command;
        let null = if text.is_empty() {
            !column.is_text || command.empty_as_null()
        } else {
            column.is_text && command.blanks_as_null() && text.chars().all(char::is_whitespace)
        };
        if null {
            self.out.extend_from_slice(b"\\N");
            return Ok(());
        }
        let mut text: &str = &text;
        if let (true, Some(max)) = (command.truncate_columns(), column.max_chars) {
            if let Some((cut, _)) = text.char_indices().nth(max) {
                text = &text[..cut];
            }
        }
        escape_into(&mut self.out, text.as_bytes());
        Ok(())
    }

    /// Skips `IGNOREHEADER` lines; returns the offset after them and the next line number.
    fn skip_header(&self, file: &[u8]) -> (usize, u64) {
        let mut pos = 0;
        let mut line = 1;
        for _ in 0..self.command.ignore_header() {
            match file[pos..].iter().position(|b| *b == b'\n') {
                Some(newline) => {
                    pos += newline + 1;
                    line += 1;
                }
                None => return (file.len(), line),
            }
        }
        (pos, line)
    }

    fn text(&mut self, file: &[u8], delimiter: u8) {
        let (mut pos, mut line) = self.skip_header(file);
        let null_as = self.command.null_as().as_bytes();
        while pos < file.len() {
            let end = file[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(file.len(), |n| pos + n);
            let text = &file[pos..end];
            // Empty lines (two records' newlines in a row, say) are skipped, not loaded.
            if !text.is_empty() {
                let fields = text.split(|b| *b == delimiter).map(|field| {
                    if field == null_as {
                        Field::Null
                    } else {
                        Field::Bytes(Cow::Borrowed(field))
                    }
                });
                self.row(pos, line, fields);
            }
            pos = end + 1;
            line += 1;
        }
    }

    fn csv(&mut self, file: &[u8], delimiter: u8, quote: u8) {
        let (mut pos, mut line) = self.skip_header(file);
        let null_as = self.command.null_as().as_bytes();
        while pos < file.len() {
            if file[pos] == b'\n' || file[pos..].starts_with(b"\r\n") {
                pos += if file[pos] == b'\n' { 1 } else { 2 };
                line += 1;
                continue;
            }
            let row_start = pos;
            let row_line = line;
            let mut fields: Vec<Field<'_>> = Vec::new();
            let mut unterminated = false;
            loop {
                if file.get(pos) == Some(&quote) {
                    let mut value = Vec::new();
                    pos += 1;
                    loop {
                        let Some(q) = file[pos..].iter().position(|b| *b == quote) else {
                            unterminated = true;
                            break;
                        };
                        let chunk = &file[pos..pos + q];
                        line += count_newlines(chunk);
                        value.extend_from_slice(chunk);
                        pos += q + 1;
                        if file.get(pos) == Some(&quote) {
                            value.push(quote);
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    if unterminated {
                        break;
                    }
                    // Text between the closing quote and the delimiter is kept, as PostgreSQL does.
                    let end = field_end(file, pos, delimiter);
                    value.extend_from_slice(trim_cr(file, pos, end));
                    pos = end;
                    fields.push(Field::Bytes(Cow::Owned(value)));
                } else {
                    let end = field_end(file, pos, delimiter);
                    let field = trim_cr(file, pos, end);
                    fields.push(if field == null_as {
                        Field::Null
                    } else {
                        Field::Bytes(Cow::Borrowed(field))
                    });
                    pos = end;
                }
                match file.get(pos) {
                    Some(b) if *b == delimiter => pos += 1,
                    Some(_) => {
                        pos += 1;
                        line += 1;
                        break;
                    }
                    None => break,
                }
            }
            if unterminated {
                self.error(
                    row_start,
                    row_line,
                    None,
                    "Unterminated quoted field".to_string(),
                );
                // Start again at the next record: its rows may be fine.
                let next = self.next_record_start(row_start, file.len());
                line = row_line + count_newlines(&file[row_start..next]);
                pos = next;
                continue;
            }
            self.row(row_start, row_line, fields);
        }
    }

    fn json(&mut self, file: &[u8], ignore_case: bool) {
        let key = |name: &str| {
            if ignore_case {
                name.to_lowercase()
            } else {
                name.to_string()
            }
        };
        let by_key: HashMap<String, usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (key(&c.name), i))
            .collect();
        let mut pos = 0;
        let mut line = 1;
        loop {
            while let Some(b) = file.get(pos).filter(|b| b.is_ascii_whitespace()) {
                line += u64::from(*b == b'\n');
                pos += 1;
            }
            if pos >= file.len() {
                return;
            }
            let mut stream =
                serde_json::Deserializer::from_slice(&file[pos..]).into_iter::<&RawValue>();
            match stream.next() {
                Some(Ok(raw)) => {
                    let end = pos + stream.byte_offset();
                    self.json_row(pos, line, raw, &by_key, ignore_case);
                    line += count_newlines(&file[pos..end]);
                    pos = end;
                }
                Some(Err(e)) => {
                    self.error(pos, line, None, format!("Invalid JSON: {e}"));
                    let next = self.next_record_start(pos, file.len());
                    line += count_newlines(&file[pos..next]);
                    pos = next;
                }
                None => return,
            }
        }
    }

    fn json_row(
        &mut self,
        offset: usize,
        line: u64,
        raw: &RawValue,
        by_key: &HashMap<String, usize>,
        ignore_case: bool,
    ) {
        if offset < self.first_new_offset {
            return;
        }
        if !raw.get().starts_with('{') {
            let reason = "Invalid JSON object: a row must be a JSON object".to_string();
            self.error(offset, line, None, reason);
            return;
        }
        let object: HashMap<String, &RawValue> = match serde_json::from_str(raw.get()) {
            Ok(object) => object,
            Err(e) => {
                self.error(offset, line, None, format!("Invalid JSON: {e}"));
                return;
            }
        };
        let mut values: Vec<Option<&RawValue>> = vec![None; self.columns.len()];
        for (name, value) in &object {
            let index = if ignore_case {
                by_key.get(&name.to_lowercase())
            } else {
                by_key.get(name)
            };
            if let Some(&index) = index {
                values[index] = Some(value);
            }
        }
        let mut fields = Vec::with_capacity(values.len());
        for value in values {
            let field = match value.map(RawValue::get) {
                None | Some("null") => Field::Null,
                Some(text) if text.starts_with('"') => match serde_json::from_str::<String>(text) {
                    Ok(s) => Field::Text(Cow::Owned(s)),
                    Err(e) => {
                        self.error(offset, line, None, format!("Invalid JSON string: {e}"));
                        return;
                    }
                },
                // Numbers keep their exact digits; nested objects and arrays load as JSON text.
                Some(text) => Field::Text(Cow::Owned(text.to_string())),
            };
            fields.push(field);
        }
        self.row(offset, line, fields);
    }
}

/// Where the field starting at `pos` ends: at the delimiter, the newline or the end of the file.
fn field_end(file: &[u8], pos: usize, delimiter: u8) -> usize {
    file[pos..]
        .iter()
        .position(|b| *b == delimiter || *b == b'\n')
        .map_or(file.len(), |n| pos + n)
}

/// `file[pos..end]` without the `\r` of a `\r\n` line end.
fn trim_cr(file: &[u8], pos: usize, end: usize) -> &[u8] {
    if end > pos && file.get(end) == Some(&b'\n') && file[end - 1] == b'\r' {
        &file[pos..end - 1]
    } else {
        &file[pos..end]
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// Appends `bytes` in PostgreSQL's `COPY` text format: backslash, tab, newline and carriage
/// return escaped.
pub(crate) fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut plain = 0;
    for (i, b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        out.extend_from_slice(escaped);
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(parts: &[&str]) -> Vec<Record> {
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| Record {
                lsn: i as u64 + 1,
                sub: 0,
                arrival_ms: 0,
                data: Bytes::copy_from_slice(p.as_bytes()),
            })
            .collect()
    }

    fn cols(spec: &[(&str, bool, Option<usize>)]) -> Vec<Column> {
        spec.iter()
            .map(|(name, is_text, max_chars)| Column {
                name: name.to_string(),
                is_text: *is_text,
                max_chars: *max_chars,
            })
            .collect()
    }

    fn run(options: &str, parts: &[&str], columns: &[Column], first_new: usize) -> Rows {
        let command =
            CopyCommand::from_firehose("t", None, Some(options)).unwrap_or_else(|e| panic!("{e}"));
        encode(&records(parts), first_new, &command, columns, None)
    }

    fn text(rows: &Rows) -> String {
        String::from_utf8_lossy(&rows.data).into_owned()
    }

    #[test]
    fn pipe_text_with_escapes_and_nulls() {
        let c = cols(&[("id", false, None), ("name", true, None)]);
        let rows = run("", &["1|a\tb\\c\n2|\\N\n", "3|\n\n4||x\n5"], &c, 0);
        assert_eq!(text(&rows), "1\ta\\tb\\\\c\n2\t\\N\n3\t\n");
        assert_eq!(
            rows.rows
                .iter()
                .map(|r| (r.record, r.line))
                .collect::<Vec<_>>(),
            vec![(0, 1), (0, 2), (1, 3)]
        );
        let reasons: Vec<_> = rows
            .errors
            .iter()
            .map(|e| (e.record, e.line, e.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (1, 5, "Extra column(s) found"),
                (1, 6, "Delimiter not found (fewer fields than columns)")
            ]
        );
    }

    #[test]
    fn rows_of_loaded_records_are_skipped_but_counted_in_lines() {
        let c = cols(&[("v", true, None)]);
        let rows = run("", &["a\n", "b\n", "c\n"], &c, 2);
        assert_eq!(text(&rows), "c\n");
        assert_eq!((rows.rows[0].record, rows.rows[0].line), (2, 3));
    }

    #[test]
    fn csv_quotes_header_and_nulls() {
        let c = cols(&[("id", false, None), ("note", true, None)]);
        let rows = run(
            "CSV IGNOREHEADER 1 NULL AS 'nil' EMPTYASNULL",
            &[
                "id,note\r\n1,\"a, \"\"b\"\"\nc\"\r\n",
                "2,nil\n3,\"nil\"\n4,\n5,\"open\n6,x\n",
            ],
            &c,
            0,
        );
        assert_eq!(text(&rows), "1\ta, \"b\"\\nc\n2\t\\N\n3\tnil\n4\t\\N\n");
        assert_eq!(rows.errors.len(), 1);
        assert_eq!(rows.errors[0].reason, "Unterminated quoted field");
        assert_eq!((rows.errors[0].record, rows.errors[0].line), (1, 7));
    }

    #[test]
    fn json_auto_and_ignorecase() {
        let c = cols(&[
            ("id", false, None),
            ("name", true, None),
            ("meta", true, None),
        ]);
        let parts = [
            "{\"id\": 12345678901234567890.5, \"name\": \"a\\tb\"}",
            "{\"ID\": 2, \"Name\": \"x\", \"meta\": {\"k\": [1, 2]}}\n",
            "{\"id\": 3, \"name\": null} [1]",
            "{\"id\": oops",
            "{\"id\": 4}",
        ];
        let exact = run("JSON 'auto'", &parts, &c, 0);
        assert_eq!(
            text(&exact),
            "12345678901234567890.5\ta\\tb\t\\N\n\\N\t\\N\t{\"k\": [1, 2]}\n3\t\\N\t\\N\n4\t\\N\t\\N\n"
        );
        let reasons: Vec<_> = exact.errors.iter().map(|e| e.record).collect();
        assert_eq!(reasons, vec![2, 3]);
        let folded = run("JSON 'auto ignorecase'", &parts, &c, 0);
        assert!(
            text(&folded).contains("2\tx\t{\"k\": [1, 2]}\n"),
            "{}",
            text(&folded)
        );
    }

    #[test]
    fn truncate_blanks_and_utf8() {
        let c = cols(&[("code", true, Some(3)), ("n", false, None)]);
        let rows = run("TRUNCATECOLUMNS BLANKSASNULL", &["héllo|1\n   |\n"], &c, 0);
        assert_eq!(text(&rows), "hél\t1\n\\N\t\\N\n");
        let bad = Record {
            lsn: 1,
            sub: 0,
            arrival_ms: 0,
            data: Bytes::from_static(b"\xff|1\n"),
        };
        let command = CopyCommand::from_firehose("t", None, None).unwrap_or_else(|e| panic!("{e}"));
        let rows = encode(&[bad], 0, &command, &c, None);
        assert!(rows.rows.is_empty());
        assert_eq!(rows.errors[0].column.as_deref(), Some("code"));
        assert_eq!(rows.errors[0].reason, "Invalid UTF8 character");
    }
}
