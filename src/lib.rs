//! madoguchi (窓口, "the front desk"): a chat bot that holds the first
//! consultation with the owner of a small or medium-sized company in Japan
//! and hands a summarised case to the right regional support hub, with the
//! owner's consent.
//!
//! # Map of the modules
//!
//! - [`domain`]: typed values parsed at the edge: prefectures and
//!   municipalities (places, postal codes), industries (JSIC), numbers with
//!   units, contact details (phones by the numbering plan), dates, ids. Pure
//!   functions with unit tests; reference data comes from `data/`, compiled
//!   in.
//! - [`script`]: the dialog script format (`dialogs/*.yaml`), its compiler
//!   and diagnostics (`file:line:col`), and the compiled [`script::Flow`].
//! - [`routing`]: hubs and rules; chooses the hub(s) for a case and records
//!   why; areas of municipalities and the national directory of hubs
//!   ([`routing::areas`]).
//! - [`engine`]: the consultation state machine. `step(flow, state, input,
//!   ctx) -> effects`.
//! - [`desk`]: case handling without I/O, the staff side's engine:
//!   `decide(network, case, request) -> decision` (refused with a text
//!   key, or accepted with store changes, audit entries, notes for the
//!   case's discussion, messages for the owner, whom to notify, a forward
//!   that asks the owner first). Who may act for which hub is decided
//!   there from a platform-neutral identity (`platform:user` and the
//!   groups the adapter resolved). Staff texts are templates in
//!   `dialogs/desk/{ja,en}.yaml` ([`desk::texts`]).
//! - [`casework`]: runs the desk's decisions against the store, for every
//!   adapter (Discord, Slack, `madoguchi cases`).
//! - [`render`]: template contexts; plain and common templates are
//!   rendered without building the JSON context. A template that fails is
//!   an error, never empty text.
//! - [`escape`]: one escaping function per medium for owner text
//!   (terminal, inbox Markdown/HTML, Discord, Slack), all tested with one hostile
//!   corpus (`tests/escape/hostile.txt`).
//! - [`store`]: the [`store::Store`] trait, its SQLite implementation (the
//!   embedded default) and its PostgreSQL one (several instances on one
//!   database), each with its own migrations; [`store::batch`] commits concurrent owners' steps together (group
//!   commit), each still durable before its reply, and reads the sessions
//!   of owners not in the runner's cache many per query; both run on
//!   threads of their own. On SQLite, [`store::walsync`] fsyncs a batch's
//!   WAL after its commit, outside the write lock, while the next batch is
//!   written; the batch's owners are answered only after that fsync, and
//!   after a failed one the store writes nothing until it is opened anew.
//! - [`runner`]: drives the engine for one owner, committing each step to the
//!   store before releasing the reply; loads pinned script versions.
//! - [`sheet`]: checks that a company information sheet is faithful to the
//!   answers (every answer shown, no claim the owner did not make).
//! - [`delivery`]: the local inbox as an outbox target: every pending
//!   local delivery is written once, atomically, whenever the store is
//!   opened by `chat` or `run`.
//! - [`outbox`]: the delivery worker: leases due deliveries from the store
//!   and hands each to the [`outbox::Sender`] of its transport (the local
//!   inbox, Discord), with classified failures, retries and rate-limit
//!   waits; it runs on every instance, the leases keep two from sending
//!   one delivery.
//! - [`relay`]: messages between an owner and the staff of the hub
//!   handling their case, on any platform (a reply, an owner's later DM,
//!   a consent request for a forward): queued as rows of the relay's
//!   outbox and sent by the outbox's sender of the target platform; the
//!   text is erased once sent, only message ids stay. The same outbox
//!   carries refresh jobs, which bring a case's chat posts on one
//!   platform up to date after an action taken elsewhere (the terminal,
//!   the other platform).
//! - [`followup`]: step 5, follow-ups after a match: scheduled when a
//!   case is closed as matched, offered and reminded once through timer
//!   rows, answered in the follow-up dialog, recorded on the case.
//! - [`chat`]: the terminal adapter (input read as bytes, checked line by
//!   line); [`transcript`]: transcript tests.
//! - [`discord`]: the Discord bot (owners by DM, staff in hub channels, the
//!   case delivery worker); `madoguchi run`.
//! - [`slack`]: the Slack app (owners in a DM with the app, cases in hubs'
//!   channels through the outbox's Slack sender), Socket Mode or the
//!   Events API over HTTP.
//! - [`network`]: the network's side after routing: [`network::reminders`]
//!   decides reminders, escalation, consent lapses and nudges in business
//!   time ([`domain::calendar`], Japanese holidays from `data/`);
//!   [`network::worker`] keeps them as timer rows in the store
//!   ([`store::Store::schedule_timer`]) and sends them when due.
//! - [`instances`]: running on PostgreSQL: the leader lock that lets one
//!   instance hold the Discord gateway, the health endpoint, and
//!   following the reloads of the other instances (`LISTEN/NOTIFY` with a
//!   polling backstop).
//! - [`report`]: the network's KPI report (`madoguchi report`), a pure
//!   computation over facts read from the store, rendered as Markdown, CSV
//!   or one self-contained HTML page; the monthly summary for
//!   administrators. [`metrics`]: `/metrics` in the Prometheus text format.
//!
//! # Invariants
//!
//! 1. `domain`, `script`, `routing`, `engine`, `desk`, `render`, `escape`,
//!    `sheet` and `network::reminders` do no I/O and
//!    never read the clock: time arrives in [`engine::Ctx`]. Nothing under
//!    them imports tokio, sqlx or serenity.
//! 2. Every accepted answer is an [`engine::Effect::Record`], and the runner
//!    commits all effects of a step in one transaction, and that
//!    transaction is on disk (its fsync finished) before any reply is sent,
//!    so an acknowledged answer survives a crash or a power cut.
//! 3. A session is pinned to the content hash of the script and routing
//!    sources it started on; those sources are stored, so the session
//!    finishes on that exact version even after the files change.
//! 4. Nothing about an owner leaves the bot without a consent record that
//!    names the recipients; deliveries are created in the same transaction
//!    as the case and the consent.
//! 5. Owner text is stored as typed and escaped only when rendered.
//! 6. A stored session is its snapshot (the state without answers) plus its
//!    answer log: [`engine::SessionState::apply_answer_log`] over the
//!    session's `Record`/`Unset` effects gives back exactly the engine's
//!    answers (the transcript harness checks this at every turn).
//! 7. A step is written only over the session revision it was computed
//!    from, so a state held in memory (the runner's session cache) never
//!    overwrites newer data: a stale step is refused and run again on the
//!    stored state. Likewise a first step that did not read the owner's
//!    sessions creates a session only if what it presumed about them
//!    ([`store::Presumption`]) holds in the writing transaction; otherwise
//!    it is refused and run again after a read.
//! 8. No consent is recorded with empty or unrendered wording and no case
//!    with an empty sheet or headline: the engine refuses a step whose
//!    template fails (the owner is told, administrators are alerted), and
//!    every store refuses such a step again ([`store::StoreError::Unfit`]).
//! 10. Every staff action on a case, from any platform, is decided by
//!     [`desk::decide`]; adapters only parse input, apply the decision's
//!     effects through [`casework`] and render its texts, so permissions
//!     and the consent check on forwards are the same everywhere.
//! 9. Owner text reaches a medium only through that medium's function in
//!    [`escape`]; local inbox files are written once each, keyed by their
//!    delivery, and are replaced by tombstones when the owner is forgotten.

pub mod admin;
pub mod answer;
pub mod casework;
pub mod chat;
pub mod delivery;
pub mod desk;
pub mod discord;
pub mod domain;
pub mod engine;
pub mod escape;
pub mod followup;
pub mod instances;
pub mod metrics;
pub mod network;
pub mod outbox;
pub mod privacy;
pub mod relay;
pub mod render;
pub mod report;
pub mod routing;
pub mod runner;
pub mod script;
pub mod sheet;
pub mod slack;
pub mod store;
pub mod transcript;
