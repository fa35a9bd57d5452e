//! Positions shared by the text parsers' errors.

use serde::{Deserialize, Serialize};

/// Where in a text input a problem is: 1-based line and column (column in
/// bytes for `/proc` files, whitespace-separated field for tables where the
/// parser says so).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Location {
    /// The position at 1-based `line` and `column`.
    ///
    /// ```
    /// use conntrack_core::Location;
    /// assert_eq!(Location::new(2, 7).to_string(), "line 2, column 7");
    /// ```
    pub const fn new(line: usize, column: usize) -> Self {
        Location { line, column }
    }
}

impl core::fmt::Display for Location {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}
