//! eddy's engine: memtables, Tantivy segments, flusher, search, recovery.
