//! Tools for administrators: pictures of a script and routing explanations.
//! Pure text generation; the CLI does the I/O.

pub mod explain;
pub mod graph;
