//! The PostgreSQL / Redshift destination (`COPY ... FROM STDIN`, exactly-once through `hydrant_offsets`): not built yet.
