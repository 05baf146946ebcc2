//! The integration test binary: one binary, so the crate is linked once.
//!
//! - `transcripts`: every dialog transcript under `dialogs/tests/`.
//! - `store_story`: one story generic over [`Store`], run on each backend.
//! - `cli`: the `madoguchi` binary as a newcomer runs it.
//! - `group_commit`: concurrent turns committed together are all durable
//!   (on SQLite and, with `MADOGUCHI_TEST_PG`, PostgreSQL; see
//!   `support::db`).
//! - `store_copy`: `store copy` to PostgreSQL and `backup` keep everything.
//! - `instances`: the leader lock passes to a standby; the health endpoint.
//! - `render_paths`: the fast template paths render exactly as handlebars.
//! - `discord_e2e`: the Discord bot against the local stand-in.
//! - `support::discord`: the local Discord stand-in (crate `discord-standin`,
//!   `crates/discord-standin`) re-exported, with its smoke tests.

mod admin;
mod cli;
mod corpus;
mod discord_e2e;
mod group_commit;
mod instances;
mod reload;
mod render_paths;
mod store_copy;
mod store_story;
mod support;
mod transcripts;
