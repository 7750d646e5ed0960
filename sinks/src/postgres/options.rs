//! `CopyCommand`: the table, its column list and the Redshift `CopyOptions` hydrant understands.
//!
//! Firehose passes `CopyOptions` through to Redshift's `COPY`. hydrant loads with PostgreSQL's
//! `COPY ... FROM STDIN` instead, so it reads the options itself and turns the batch into rows
//! the way Redshift would. It understands the options below and refuses every other one by name
//! (the engine answers `InvalidArgumentException` with the message), rather than ignore an option
//! that would change what lands in the table:
//!
//! | option | meaning |
//! | --- | --- |
//! | (none) | text: fields split by `|`, one row per line, `\N` is NULL |
//! | `DELIMITER [AS] 'c'` | text with another one-character delimiter (`'\t'` and `'\011'` work) |
//! | `CSV` / `FORMAT [AS] CSV` | RFC 4180 CSV, delimiter `,` unless `DELIMITER` says otherwise |
//! | `QUOTE [AS] 'q'` | the CSV quote character (default `"`) |
//! | `IGNOREHEADER [AS] n` | skip the first `n` lines of each batch (each batch is one file) |
//! | `JSON 'auto'` / `JSON 'auto ignorecase'` | one row per JSON object, keys matched to columns |
//! | `NULL [AS] 'x'` | the text (unquoted, in CSV) that means NULL |
//! | `TIMEFORMAT 'auto'`, `DATEFORMAT 'auto'` | accepted: PostgreSQL parses dates and times itself |
//! | `GZIP`, `ZSTD` | the intermediate objects are compressed (must match `CompressionFormat`) |
//! | `TRUNCATECOLUMNS` | cut text to the column's `varchar(n)` / `char(n)` length |
//! | `MAXERROR [AS] n` | load the batch even if up to `n` rows are bad (default 0) |
//! | `EMPTYASNULL`, `BLANKSASNULL` | empty / whitespace-only text fields load as NULL |
//!
//! Keywords are case-insensitive; literals are single-quoted (`''` or `\'` for a quote, `\t`, `\\`
//! and three-digit octal escapes; any other backslash stays as written, so `'\N'` is
//! backslash-N).

use std::fmt;

use super::PgConfigError;
use crate::Compression;

/// The longest identifier accepted (Redshift's limit, in bytes; PostgreSQL itself keeps 63).
const IDENTIFIER_BYTES_MAX: usize = 127;

/// Redshift's upper bound for `MAXERROR`.
pub const MAX_ERROR_LIMIT: u64 = 100_000;

/// A table name, optionally schema-qualified, with identifier case folded as PostgreSQL does
/// (unquoted names are lowercased, `"Quoted"` ones kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    /// Parses `table`, `schema.table`, with either part `"double quoted"`.
    ///
    /// # Errors
    /// [`PgConfigError::TableName`] naming what is wrong.
    pub fn parse(text: &str) -> Result<TableName, PgConfigError> {
        let error = |reason: String| PgConfigError::TableName {
            name: text.to_string(),
            reason,
        };
        let mut scanner = Scanner::new(text);
        let first = scanner.identifier().map_err(error)?;
        let table = if scanner.eat(b'.') {
            let second = scanner.identifier().map_err(error)?;
            TableName {
                schema: Some(first),
                name: second,
            }
        } else {
            TableName {
                schema: None,
                name: first,
            }
        };
        scanner.skip_whitespace();
        if !scanner.at_end() {
            return Err(error(format!(
                "unexpected {:?} at byte {} (expected `table` or `schema.table`)",
                scanner.rest(),
                scanner.pos
            )));
        }
        Ok(table)
    }

    /// The schema, if the name is qualified.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table's own name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as SQL: each part double-quoted (`"schema"."table"`).
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!(
                "{}.{}",
                quote_identifier(schema),
                quote_identifier(&self.name)
            ),
            None => quote_identifier(&self.name),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted())
    }
}

/// `name` as a double-quoted SQL identifier (`"` doubled inside).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How the batch's bytes become rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// Delimited text, one row per line, no quoting and no escapes (Redshift's default format).
    Text {
        /// The field delimiter (default `|`).
        delimiter: u8,
    },
    /// CSV (RFC 4180): quoted fields may hold delimiters, doubled quotes and newlines.
    Csv {
        /// The field delimiter (default `,`).
        delimiter: u8,
        /// The quote character (default `"`).
        quote: u8,
    },
    /// A sequence of JSON objects (whitespace between them optional); each object is a row.
    Json {
        /// `'auto ignorecase'`: keys match columns case-insensitively; `'auto'`: exactly.
        ignore_case: bool,
    },
}

/// A validated `CopyCommand`: where the rows go and how the batch's bytes become rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyCommand {
    table: TableName,
    columns: Option<Vec<String>>,
    format: DataFormat,
    null_as: String,
    ignore_header: u64,
    compression: Option<Compression>,
    truncate_columns: bool,
    max_error: u64,
    empty_as_null: bool,
    blanks_as_null: bool,
}

impl CopyCommand {
    /// Validates a Firehose `CopyCommand`: `DataTableName`, `DataTableColumns` (comma-separated,
    /// `None` or empty = every column of the table, in order) and `CopyOptions`.
    ///
    /// # Errors
    /// [`PgConfigError`] naming the field and the problem; an option hydrant does not implement
    /// is refused by name ([`PgConfigError::UnsupportedOption`]).
    pub fn from_firehose(
        table: &str,
        columns: Option<&str>,
        options: Option<&str>,
    ) -> Result<CopyCommand, PgConfigError> {
        let table = TableName::parse(table)?;
        let columns = match columns.filter(|c| !c.trim().is_empty()) {
            Some(list) => Some(parse_columns(list)?),
            None => None,
        };
        let mut command = CopyCommand {
            table,
            columns,
            format: DataFormat::Text { delimiter: b'|' },
            null_as: "\\N".to_string(),
            ignore_header: 0,
            compression: None,
            truncate_columns: false,
            max_error: 0,
            empty_as_null: false,
            blanks_as_null: false,
        };
        command.apply_options(options.unwrap_or(""))?;
        Ok(command)
    }

    /// The target table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The target columns as given (`DataTableColumns`), case-folded; `None` = all, in order.
    pub fn columns(&self) -> Option<&[String]> {
        self.columns.as_deref()
    }

    /// How the batch's bytes become rows.
    pub fn format(&self) -> DataFormat {
        self.format
    }

    /// The text that means NULL (`NULL AS`; default `\N`). Not used with JSON, where `null` is.
    pub fn null_as(&self) -> &str {
        &self.null_as
    }

    /// Lines skipped at the start of each batch (`IGNOREHEADER`).
    pub fn ignore_header(&self) -> u64 {
        self.ignore_header
    }

    /// The compression the options declare (`GZIP`, `ZSTD`), if any.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Whether text is cut to its column's declared length (`TRUNCATECOLUMNS`).
    pub fn truncate_columns(&self) -> bool {
        self.truncate_columns
    }

    /// How many bad rows a batch may have and still load (`MAXERROR`, default 0).
    pub fn max_error(&self) -> u64 {
        self.max_error
    }

    /// Whether empty text fields of character columns load as NULL (`EMPTYASNULL`).
    pub fn empty_as_null(&self) -> bool {
        self.empty_as_null
    }

    /// Whether whitespace-only text fields of character columns load as NULL (`BLANKSASNULL`).
    pub fn blanks_as_null(&self) -> bool {
        self.blanks_as_null
    }

    /// Checks the options against the intermediate objects' `CompressionFormat`, as Firehose
    /// does: `GZIP` in the options if and only if the objects are GZIP, `ZSTD` likewise; ZIP,
    /// Snappy and HADOOP_SNAPPY cannot be loaded by Redshift and are refused.
    ///
    /// # Errors
    /// [`PgConfigError::Compression`].
    pub fn check_compression(&self, compression: Compression) -> Result<(), PgConfigError> {
        let error = |reason: String| Err(PgConfigError::Compression { reason });
        match compression {
            Compression::Zip | Compression::Snappy | Compression::HadoopSnappy => error(format!(
                "CompressionFormat {} cannot be loaded by COPY: use UNCOMPRESSED, GZIP or ZSTD",
                compression.firehose_name()
            )),
            Compression::Uncompressed => match self.compression {
                None => Ok(()),
                Some(declared) => error(format!(
                    "CopyOptions say {} but CompressionFormat is UNCOMPRESSED",
                    declared.firehose_name()
                )),
            },
            Compression::Gzip | Compression::Zstd => {
                if self.compression == Some(compression) {
                    Ok(())
                } else {
                    error(format!(
                        "CompressionFormat {0} needs {0} in CopyOptions",
                        compression.firehose_name()
                    ))
                }
            }
        }
    }

    /// The `COPY` statement hydrant sends: PostgreSQL's text format from STDIN.
    pub(crate) fn copy_statement(&self, columns: &[String]) -> String {
        let list: Vec<String> = columns.iter().map(|c| quote_identifier(c)).collect();
        format!(
            "COPY {} ({}) FROM STDIN",
            self.table.quoted(),
            list.join(", ")
        )
    }

    fn apply_options(&mut self, text: &str) -> Result<(), PgConfigError> {
        let tokens = tokenize(text)?;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut delimiter: Option<u8> = None;
        let mut quote: Option<u8> = None;
        let mut csv = false;
        let mut json: Option<bool> = None;
        let mut null_as: Option<String> = None;
        let mut stream = TokenStream { tokens, pos: 0 };
        while let Some(token) = stream.next() {
            let Token::Word(word) = token else {
                return Err(invalid(format!(
                    "expected an option keyword, found {}",
                    token.describe()
                )));
            };
            let mut keyword = word.as_str();
            if keyword == "FORMAT" {
                stream.optional_as();
                keyword = match stream.next() {
                    Some(Token::Word(w)) if w == "CSV" => "CSV",
                    Some(Token::Word(w)) if w == "JSON" => "JSON",
                    Some(Token::Word(w)) => {
                        return Err(unsupported(
                            &format!("FORMAT {w}"),
                            "only CSV and JSON 'auto' formats are supported",
                        ))
                    }
                    other => {
                        return Err(invalid(format!(
                            "FORMAT needs CSV or JSON, found {}",
                            describe(other.as_ref())
                        )))
                    }
                };
            }
            let name = known_keyword(keyword).ok_or_else(|| {
                unsupported(
                    keyword,
                    unsupported_reason(keyword).unwrap_or("not a COPY option hydrant implements"),
                )
            })?;
            if seen.contains(&name) {
                return Err(invalid(format!("{name} is given more than once")));
            }
            seen.push(name);
            match name {
                "DELIMITER" => {
                    stream.optional_as();
                    delimiter = Some(single_char("DELIMITER", &stream.literal("DELIMITER")?)?);
                }
                "QUOTE" => {
                    stream.optional_as();
                    quote = Some(single_char("QUOTE", &stream.literal("QUOTE")?)?);
                }
                "CSV" => csv = true,
                "JSON" => {
                    stream.optional_as();
                    let value = stream.literal("JSON")?;
                    let normalized = value.trim().to_ascii_lowercase();
                    json = Some(match normalized.as_str() {
                        "auto" => false,
                        "auto ignorecase" => true,
                        _ if normalized.starts_with("s3://") => {
                            return Err(unsupported(
                                &format!("JSON '{value}'"),
                                "JSONPaths files are not supported; use JSON 'auto' or \
                                 'auto ignorecase'",
                            ))
                        }
                        _ => {
                            return Err(invalid(format!(
                                "JSON '{value}': expected 'auto' or 'auto ignorecase'"
                            )))
                        }
                    });
                }
                "IGNOREHEADER" => {
                    stream.optional_as();
                    self.ignore_header = stream.number("IGNOREHEADER")?;
                }
                "NULL" => {
                    stream.optional_as();
                    let value = stream.literal("NULL AS")?;
                    if value.contains(['\n', '\r']) {
                        return Err(invalid("NULL AS cannot contain a line break".into()));
                    }
                    null_as = Some(value);
                }
                "TIMEFORMAT" | "DATEFORMAT" => {
                    stream.optional_as();
                    let value = stream.literal(name)?;
                    if !value.eq_ignore_ascii_case("auto") {
                        return Err(unsupported(
                            &format!("{name} '{value}'"),
                            "only 'auto' is supported (PostgreSQL parses dates and times itself)",
                        ));
                    }
                }
                "GZIP" | "ZSTD" => {
                    let codec = if name == "GZIP" {
                        Compression::Gzip
                    } else {
                        Compression::Zstd
                    };
                    if self.compression.is_some() {
                        return Err(invalid("GZIP and ZSTD exclude each other".into()));
                    }
                    self.compression = Some(codec);
                }
                "TRUNCATECOLUMNS" => self.truncate_columns = true,
                "EMPTYASNULL" => self.empty_as_null = true,
                "BLANKSASNULL" => self.blanks_as_null = true,
                "MAXERROR" => {
                    stream.optional_as();
                    let n = stream.number("MAXERROR")?;
                    if n > MAX_ERROR_LIMIT {
                        return Err(invalid(format!(
                            "MAXERROR {n} is above the limit of {MAX_ERROR_LIMIT}"
                        )));
                    }
                    self.max_error = n;
                }
                _ => {
                    return Err(unsupported(name, "not a COPY option hydrant implements"));
                }
            }
        }
        self.finish_format(csv, json, delimiter, quote, null_as)
    }

    fn finish_format(
        &mut self,
        csv: bool,
        json: Option<bool>,
        delimiter: Option<u8>,
        quote: Option<u8>,
        null_as: Option<String>,
    ) -> Result<(), PgConfigError> {
        if quote.is_some() && !csv {
            return Err(invalid("QUOTE can only be used with CSV".into()));
        }
        self.format = match (csv, json) {
            (true, Some(_)) => return Err(invalid("CSV and JSON exclude each other".into())),
            (false, Some(ignore_case)) => {
                let conflicting = [
                    (delimiter.is_some(), "DELIMITER"),
                    (null_as.is_some(), "NULL AS"),
                    (self.ignore_header > 0, "IGNOREHEADER"),
                ];
                if let Some((_, option)) = conflicting.iter().find(|(given, _)| *given) {
                    return Err(invalid(format!("{option} cannot be used with JSON")));
                }
                DataFormat::Json { ignore_case }
            }
            (true, None) => {
                let delimiter = delimiter.unwrap_or(b',');
                let quote = quote.unwrap_or(b'"');
                if delimiter == quote {
                    return Err(invalid(
                        "DELIMITER and QUOTE must be different characters".into(),
                    ));
                }
                DataFormat::Csv { delimiter, quote }
            }
            (false, None) => DataFormat::Text {
                delimiter: delimiter.unwrap_or(b'|'),
            },
        };
        if let Some(null_as) = null_as {
            self.null_as = null_as;
        }
        Ok(())
    }
}

fn invalid(reason: String) -> PgConfigError {
    PgConfigError::InvalidOptions { reason }
}

fn unsupported(option: &str, reason: &str) -> PgConfigError {
    PgConfigError::UnsupportedOption {
        option: option.to_string(),
        reason: reason.to_string(),
    }
}

/// The options hydrant implements, by keyword.
fn known_keyword(word: &str) -> Option<&'static str> {
    const KNOWN: [&str; 14] = [
        "DELIMITER",
        "QUOTE",
        "CSV",
        "JSON",
        "IGNOREHEADER",
        "NULL",
        "TIMEFORMAT",
        "DATEFORMAT",
        "GZIP",
        "ZSTD",
        "TRUNCATECOLUMNS",
        "EMPTYASNULL",
        "BLANKSASNULL",
        "MAXERROR",
    ];
    KNOWN.into_iter().find(|k| *k == word)
}

/// Why a known Redshift option is refused.
fn unsupported_reason(word: &str) -> Option<&'static str> {
    Some(match word {
        "MANIFEST"
        | "REGION"
        | "CREDENTIALS"
        | "IAM_ROLE"
        | "ACCESS_KEY_ID"
        | "SECRET_ACCESS_KEY"
        | "SESSION_TOKEN"
        | "MASTER_SYMMETRIC_KEY"
        | "ENCRYPTED" => "hydrant loads each batch directly, not from S3 files",
        "AVRO" | "FIXEDWIDTH" | "PARQUET" | "ORC" | "SHAPEFILE" => {
            "only text, CSV and JSON 'auto' formats are supported"
        }
        "BZIP2" | "LZOP" => "Firehose writes GZIP (or hydrant's ZSTD) objects only",
        "ESCAPE" | "REMOVEQUOTES" | "ACCEPTINVCHARS" | "ACCEPTANYDATE" | "FILLRECORD"
        | "TRIMBLANKS" | "ROUNDEC" | "IGNOREBLANKLINES" | "IGNOREALLERRORS" | "ENCODING"
        | "EXPLICIT_IDS" | "COMPROWS" | "COMPUPDATE" | "STATUPDATE" | "NOLOAD" | "READRATIO" => {
            "this COPY option is not implemented by hydrant"
        }
        _ => return None,
    })
}

/// Checks that a literal is one ASCII character usable as a delimiter or quote.
fn single_char(option: &str, value: &str) -> Result<u8, PgConfigError> {
    let bytes = value.as_bytes();
    if bytes.len() != 1 || !bytes[0].is_ascii() {
        return Err(invalid(format!(
            "{option} must be a single ASCII character, not {value:?}"
        )));
    }
    if matches!(bytes[0], b'\n' | b'\r' | b'\0') {
        return Err(invalid(format!("{option} cannot be a line break or NUL")));
    }
    Ok(bytes[0])
}

/// One token of `CopyOptions`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A keyword, uppercased.
    Word(String),
    /// A single-quoted literal, escapes resolved.
    Literal(String),
    /// An unsigned integer.
    Number(u64),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("keyword {w}"),
            Token::Literal(l) => format!("literal '{l}'"),
            Token::Number(n) => format!("number {n}"),
        }
    }
}

fn describe(token: Option<&Token>) -> String {
    token.map_or_else(|| "the end of the options".to_string(), Token::describe)
}

struct TokenStream {
    tokens: Vec<Token>,
    pos: usize,
}

impl TokenStream {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn optional_as(&mut self) {
        if matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w == "AS") {
            self.pos += 1;
        }
    }

    fn literal(&mut self, option: &str) -> Result<String, PgConfigError> {
        match self.next() {
            Some(Token::Literal(value)) => Ok(value),
            other => Err(invalid(format!(
                "{option} needs a quoted literal, found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn number(&mut self, option: &str) -> Result<u64, PgConfigError> {
        match self.next() {
            Some(Token::Number(n)) => Ok(n),
            other => Err(invalid(format!(
                "{option} needs a number, found {}",
                describe(other.as_ref())
            ))),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, PgConfigError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push(Token::Word(text[start..i].to_ascii_uppercase()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let n = text[start..i]
                .parse::<u64>()
                .map_err(|_| invalid(format!("number {} is too large", &text[start..i])))?;
            tokens.push(Token::Number(n));
        } else if c == b'\'' {
            let (literal, end) = scan_literal(text, i)?;
            tokens.push(Token::Literal(literal));
            i = end;
        } else {
            let shown: String = text[i..].chars().take(20).collect();
            return Err(invalid(format!(
                "unexpected {shown:?} at byte {i} (options are keywords, numbers and \
                 'quoted literals')"
            )));
        }
    }
    Ok(tokens)
}

/// Scans the literal opening at byte `start` (a `'`); returns its value and the byte after it.
fn scan_literal(text: &str, start: usize) -> Result<(String, usize), PgConfigError> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = bytes.get(i) else {
            return Err(invalid(format!(
                "the literal opened at byte {start} is not closed"
            )));
        };
        match c {
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => {
                out.push('\'');
                i += 2;
            }
            b'\'' => return Ok((out, i + 1)),
            b'\\' => {
                let next = bytes.get(i + 1).copied();
                let octal = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
                match (next, octal) {
                    (_, Some(digits)) => {
                        let value = digits
                            .iter()
                            .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                        let ch = char::from_u32(value)
                            .filter(char::is_ascii)
                            .ok_or_else(|| {
                                invalid(format!("octal escape at byte {i} is not ASCII"))
                            })?;
                        out.push(ch);
                        i += 4;
                    }
                    (Some(b't'), _) => {
                        out.push('\t');
                        i += 2;
                    }
                    (Some(b'\''), _) => {
                        out.push('\'');
                        i += 2;
                    }
                    (Some(b'\\'), _) => {
                        out.push('\\');
                        i += 2;
                    }
                    _ => {
                        out.push('\\');
                        i += 1;
                    }
                }
            }
            _ => {
                // Copy one whole UTF-8 character.
                let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
}

fn parse_columns(list: &str) -> Result<Vec<String>, PgConfigError> {
    let error = |reason: String| PgConfigError::Columns {
        columns: list.chars().take(200).collect(),
        reason,
    };
    let mut scanner = Scanner::new(list);
    let mut columns: Vec<String> = Vec::new();
    loop {
        let column = scanner.identifier().map_err(error)?;
        if columns.contains(&column) {
            return Err(error(format!("column {column:?} is listed twice")));
        }
        columns.push(column);
        scanner.skip_whitespace();
        if scanner.at_end() {
            return Ok(columns);
        }
        if !scanner.eat(b',') {
            return Err(error(format!(
                "unexpected {:?} at byte {} (expected a comma)",
                scanner.rest(),
                scanner.pos
            )));
        }
    }
}

/// Reads SQL identifiers.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, pos: 0 }
    }

    fn rest(&self) -> String {
        self.text[self.pos..].chars().take(20).collect()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_whitespace(&mut self) {
        while self
            .text
            .as_bytes()
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        if self.text.as_bytes().get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// An unquoted identifier (letters, digits, `_`, `$`; folded to lowercase) or a
    /// double-quoted one (`""` inside for a quote; kept as written).
    fn identifier(&mut self) -> Result<String, String> {
        self.skip_whitespace();
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let name = match bytes.get(start) {
            Some(b'"') => {
                let mut name = String::new();
                let mut i = start + 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(format!("quoted name at byte {start} is not closed")),
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                            name.push('"');
                            i += 2;
                        }
                        Some(b'"') => break,
                        Some(_) => {
                            let ch = self.text[i..].chars().next().unwrap_or('\u{fffd}');
                            name.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                self.pos = i + 1;
                if name.is_empty() {
                    return Err("a quoted name cannot be empty".into());
                }
                if name.contains('\0') {
                    return Err("a name cannot contain NUL".into());
                }
                name
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let mut i = start;
                while bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$')
                {
                    i += 1;
                }
                self.pos = i;
                self.text[start..i].to_ascii_lowercase()
            }
            Some(_) => {
                return Err(format!(
                    "unexpected {:?} at byte {start} (a name starts with a letter or _, or is \
                     \"double quoted\")",
                    self.rest()
                ))
            }
            None => return Err("a name is missing".into()),
        };
        if name.len() > IDENTIFIER_BYTES_MAX {
            return Err(format!(
                "a name is at most {IDENTIFIER_BYTES_MAX} bytes, this one has {}",
                name.len()
            ));
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(options: &str) -> Result<CopyCommand, PgConfigError> {
        CopyCommand::from_firehose("events", None, Some(options))
    }

    fn ok(options: &str) -> CopyCommand {
        copy(options).unwrap_or_else(|e| panic!("{options:?}: {e}"))
    }

    fn err(options: &str) -> String {
        match copy(options) {
            Ok(c) => panic!("{options:?} was accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_is_pipe_delimited_text() {
        let c = ok("");
        assert_eq!(c.format(), DataFormat::Text { delimiter: b'|' });
        assert_eq!(c.null_as(), "\\N");
        assert_eq!((c.max_error(), c.ignore_header()), (0, 0));
        assert_eq!(c.compression(), None);
        assert_eq!(c.table().quoted(), "\"events\"");
        assert_eq!(
            c.copy_statement(&["a".into(), "B c".into()]),
            "COPY \"events\" (\"a\", \"B c\") FROM STDIN"
        );
    }

    #[test]
    fn delimiters_and_escapes() {
        assert_eq!(
            ok("delimiter ','").format(),
            DataFormat::Text { delimiter: b',' }
        );
        assert_eq!(
            ok("DELIMITER AS '\\t'").format(),
            DataFormat::Text { delimiter: b'\t' }
        );
        assert_eq!(
            ok("Delimiter '\\011'").format(),
            DataFormat::Text { delimiter: b'\t' }
        );
        assert_eq!(
            ok("DELIMITER ''''").format(),
            DataFormat::Text { delimiter: b'\'' }
        );
        assert!(err("DELIMITER ',,'").contains("single ASCII character"));
        assert!(err("DELIMITER").contains("needs a quoted literal"));
        assert!(err("DELIMITER 'x").contains("not closed"));
        assert!(err("DELIMITER ',' DELIMITER ';'").contains("more than once"));
    }

    #[test]
    fn csv_quote_ignoreheader() {
        let c = ok("csv quote as '''' IGNOREHEADER 1 delimiter ';'");
        assert_eq!(
            c.format(),
            DataFormat::Csv {
                delimiter: b';',
                quote: b'\''
            }
        );
        assert_eq!(c.ignore_header(), 1);
        assert_eq!(
            ok("FORMAT AS CSV").format(),
            DataFormat::Csv {
                delimiter: b',',
                quote: b'"'
            }
        );
        assert!(err("QUOTE '\"'").contains("only be used with CSV"));
        assert!(err("CSV QUOTE ','").contains("must be different"));
        assert!(err("IGNOREHEADER 'x'").contains("needs a number"));
    }

    #[test]
    fn json_auto_and_refusals() {
        assert_eq!(
            ok("JSON 'auto'").format(),
            DataFormat::Json { ignore_case: false }
        );
        assert_eq!(
            ok("json 'auto ignorecase' timeformat 'auto' DATEFORMAT AS 'AUTO'").format(),
            DataFormat::Json { ignore_case: true }
        );
        assert_eq!(
            ok("FORMAT AS JSON 'auto'").format(),
            DataFormat::Json { ignore_case: false }
        );
        let e = err("JSON 's3://bucket/jsonpaths.json'");
        assert!(e.contains("JSONPaths") && e.contains("s3://bucket"), "{e}");
        assert!(err("JSON 'noshrug'").contains("expected 'auto'"));
        assert!(err("JSON 'auto' CSV").contains("exclude each other"));
        assert!(err("JSON 'auto' DELIMITER ','").contains("DELIMITER cannot be used with JSON"));
        assert!(err("TIMEFORMAT 'YYYY-MM-DD HH:MI:SS'").contains("only 'auto'"));
    }

    #[test]
    fn other_options() {
        let c = ok("NULL AS 'nil' gzip TRUNCATECOLUMNS MaxError 10 EMPTYASNULL BLANKSASNULL");
        assert_eq!(c.null_as(), "nil");
        assert_eq!(c.compression(), Some(Compression::Gzip));
        assert!(c.truncate_columns() && c.empty_as_null() && c.blanks_as_null());
        assert_eq!(c.max_error(), 10);
        assert_eq!(ok("NULL '\\N'").null_as(), "\\N");
        assert_eq!(ok("ZSTD").compression(), Some(Compression::Zstd));
        assert!(err("GZIP ZSTD").contains("exclude each other"));
        assert!(err("MAXERROR 100001").contains("above the limit"));
    }

    #[test]
    fn unsupported_options_are_named() {
        for (options, name) in [
            ("MANIFEST", "MANIFEST"),
            ("REGION 'us-east-1'", "REGION"),
            ("AVRO 'auto'", "AVRO"),
            ("FIXEDWIDTH 'a:1'", "FIXEDWIDTH"),
            ("gzip escape", "ESCAPE"),
            ("BZIP2", "BZIP2"),
            ("FORMAT AS PARQUET", "FORMAT PARQUET"),
            ("FROBNICATE", "FROBNICATE"),
        ] {
            let e = copy(options).err();
            match e {
                Some(PgConfigError::UnsupportedOption { option, .. }) => {
                    assert_eq!(option, name, "{options}")
                }
                other => panic!("{options}: {other:?}"),
            }
        }
        assert!(err("DELIMITER ','; DROP TABLE x").contains("unexpected"));
    }

    #[test]
    fn table_and_column_names() {
        let t = TableName::parse("Sales.\"Order \"\"Lines\"\"\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.schema(), Some("sales"));
        assert_eq!(t.name(), "Order \"Lines\"");
        assert_eq!(t.quoted(), "\"sales\".\"Order \"\"Lines\"\"\"");
        for bad in [
            "",
            "a.b.c",
            "x; DROP TABLE y",
            "1abc",
            "\"\"",
            "\"open",
            "a b",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TableName::parse(&"a".repeat(128)).is_err());
        let c = CopyCommand::from_firehose("t", Some(" id, \"Name\" ,ts "), None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.columns(),
            Some(&["id".to_string(), "Name".into(), "ts".into()][..])
        );
        assert!(
            CopyCommand::from_firehose("t", Some(""), None).is_ok_and(|c| c.columns().is_none())
        );
        for bad in ["a,,b", "a,a", "a b", "a,", "a;b"] {
            assert!(
                CopyCommand::from_firehose("t", Some(bad), None).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn compression_must_match() {
        let plain = ok("");
        let gzip = ok("GZIP");
        let zstd = ok("ZSTD");
        assert!(plain.check_compression(Compression::Uncompressed).is_ok());
        assert!(gzip.check_compression(Compression::Gzip).is_ok());
        assert!(zstd.check_compression(Compression::Zstd).is_ok());
        assert!(plain.check_compression(Compression::Gzip).is_err());
        assert!(gzip.check_compression(Compression::Uncompressed).is_err());
        assert!(gzip.check_compression(Compression::Zstd).is_err());
        for refused in [
            Compression::Zip,
            Compression::Snappy,
            Compression::HadoopSnappy,
        ] {
            let e = gzip.check_compression(refused).err().map(|e| e.to_string());
            assert!(e.is_some_and(|e| e.contains(refused.firehose_name())));
        }
    }
}
