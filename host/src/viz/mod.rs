//! Pictures for people: loss charts and before/after contact sheets.

pub mod plot;
pub mod sheet;
