//! End-to-end tests across the Unveil crates live in `tests/tests/`; this library is empty.
