//! ProcessingConfiguration: Lambda-contract transforms, AppendDelimiterToRecord, RecordDeAggregation: not built yet.
