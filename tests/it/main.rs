//! The integration test binary: one binary, so the crate is linked once.
//!
//! - `transcripts`: every dialog transcript under `dialogs/tests/`.
//! - `store_story`: one story generic over [`Store`], run on each backend.
//! - `cli`: the `madoguchi` binary as a newcomer runs it.
//! - `group_commit`: concurrent turns committed together are all durable.
//! - `render_paths`: the fast template paths render exactly as handlebars.
//! - `understanding`: the corpus of owner phrasings in `tests/understanding/`.
//! - `discord_e2e`: the Discord bot against the local stand-in.
//! - `support::discord`: the local Discord stand-in (crate `discord-standin`,
//!   `crates/discord-standin`) re-exported, with its smoke tests.

mod admin;
mod cli;
mod corpus;
mod discord_e2e;
mod group_commit;
mod reload;
mod render_paths;
mod store_story;
mod support;
mod transcripts;
mod understanding;
