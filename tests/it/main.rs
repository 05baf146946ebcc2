//! The integration test binary: one binary, so the crate is linked once.
//!
//! - `transcripts`: every dialog transcript under `dialogs/tests/`.
//! - `store_story`: one story generic over [`Store`], run on each backend.
//! - `cli`: the `madoguchi` binary as a newcomer runs it.
//! - `support::discord`: the local Discord stand-in (with its own smoke tests).

mod admin;
mod cli;
mod corpus;
mod reload;
mod store_story;
mod support;
mod transcripts;
