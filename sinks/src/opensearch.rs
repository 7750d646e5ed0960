//! The OpenSearch / Elasticsearch destination (`_bulk`): not built yet.
