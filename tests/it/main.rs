//! The integration test binary: one binary, so the crate is linked once.
//!
//! - `transcripts`: every dialog transcript under `dialogs/tests/`.
//! - `store_story`: one story generic over [`Store`], run on each backend.
//! - `cli`: the `madoguchi` binary as a newcomer runs it.
//! - `cli_cases`: staff actions from the terminal (`cases claim` …).
//! - `erasure`: after `forget`, no value is left in the database, WAL or inbox.
//! - `forget_parity`: forget and unfit consents held the same on both backends.
//! - `escaping`: owner text on the terminal (chat, my-data, cases) is inert.
//! - `follow_up`: step 5, follow-ups after a match, by a fixed clock across
//!   restarts (offered once, reminded once, declined, unanswered, consent).
//! - `sheet`: the company information sheet is faithful to the answers.
//! - `length`: the median length of a consultation and the opening promise.
//! - `group_commit`: concurrent turns committed together are all durable.
//! - `outbox`: the local inbox as an outbox target (exactly once, escaped).
//! - `outbox_worker`: the outbox worker with a scripted sender and a fixed
//!   clock: backoff, rate-limit scopes, earlier posts, leases (both backends).
//! - `input`: bytes that are not UTF-8, an open consultation, broken pipes,
//!   the WAL after many idle lines.
//! - `group_commit`: concurrent turns committed together are all durable
//!   (on SQLite and, with `MADOGUCHI_TEST_PG`, PostgreSQL; see
//!   `support::db`).
//! - `store_copy`: `store copy` to PostgreSQL and `backup` keep everything.
//! - `instances`: the leader lock passes to a standby; the health endpoint;
//!   reloads reach the other instance; two runners keep an owner's turns serial.
//! - `failover`: two `madoguchi run` on one PostgreSQL, the leader killed
//!   mid-consultation; the standby takes over and nothing is lost or doubled.
//! - `report`: the KPI report from a seeded database, number by number in
//!   md, csv and html; the HTML in headless Chromium; `/metrics`.
//! - `render_paths`: the fast template paths render exactly as handlebars.
//! - `crash`: `chat` killed with SIGKILL anywhere loses and repeats nothing.
//! - `understanding`: the corpus of owner phrasings in `tests/understanding/`.
//! - `desk`: the desk's decisions as data (`tests/desk/*.yaml`).
//! - `reminders`: reminders, escalation, lapse and nudges by a moved clock
//!   across restarts, each fired once (both backends).
//! - `discord_e2e`: the Discord bot against the local stand-in.
//! - `slack_standin`: the local Slack stand-in (crate `slack-standin`,
//!   `crates/slack-standin`) driven by the real slack-morphism client.
//! - `support::discord`: the local Discord stand-in (crate `discord-standin`,
//!   `crates/discord-standin`) re-exported, with its smoke tests.

mod admin;
mod cli;
mod cli_cases;
mod corpus;
mod crash;
mod desk;
mod discord_e2e;
mod erasure;
mod escaping;
mod failover;
mod follow_up;
mod forget_parity;
mod group_commit;
mod input;
mod instances;
mod length;
mod outbox;
mod outbox_worker;
mod reload;
mod reminders;
mod render_paths;
mod report;
mod sheet;
mod slack_e2e;
mod slack_standin;
mod store_copy;
mod store_story;
mod support;
mod transcripts;
mod understanding;
