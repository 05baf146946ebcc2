//! `/metrics`: operational counters in the Prometheus text format
//! (OpenMetrics), served on the health endpoint's port
//! ([`crate::instances::serve_health`]).
//!
//! Two kinds of figures:
//! - counted by this process as turns happen ([`record_turn`]): turns and
//!   re-asks per platform (counters, reset when the process starts, as
//!   Prometheus expects of a counter);
//! - read from the store at each scrape ([`render`]): cases routed per
//!   platform, deliveries pending and failed per transport, reminders due
//!   (open cases past their hub's claim limit, in business hours: the
//!   limit of `reminders:` in `routing.yaml` the timer loop schedules the
//!   claim reminder by, so `/metrics`, the reminders and the report's
//!   "overdue now" agree) and
//!   reminders sent (audit entries named `remind…` or `escalat…`). These
//!   are the same on every instance of a shared database.
//!
//! Labels are platforms, transports and statuses only: nothing about an
//! owner, a case or a staff member.
//!
//! The `prometheus-client` crate writes the exposition (escaping, types,
//! `# EOF`), so none of it is hand-formatted here.

use crate::store::Store;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlatformLabel {
    platform: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabel {
    transport: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RelayLabel {
    transport: String,
    kind: String,
    status: String,
}

struct Counters {
    turns: Family<PlatformLabel, Counter>,
    reasks: Family<PlatformLabel, Counter>,
}

fn counters() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(|| Counters {
        turns: Family::default(),
        reasks: Family::default(),
    })
}

/// Counts one committed turn of an owner on `platform` and the questions
/// it asked again.
pub fn record_turn(platform: &str, reasks: u64) {
    let c = counters();
    let label = PlatformLabel {
        platform: platform.to_string(),
    };
    c.turns.get_or_create(&label).inc();
    if reasks > 0 {
        c.reasks.get_or_create(&label).inc_by(reasks);
    }
}

/// The exposition: this process's counters and the store's counts as of
/// `now`.
pub async fn render(store: &dyn Store, now: DateTime<Utc>) -> crate::store::Result<String> {
    let ops = store.ops_counts(now).await?;
    let c = counters();
    let mut reg = Registry::with_prefix("madoguchi");
    // Families are shared handles: registering clones exposes the live
    // counters without moving them into this scrape's registry.
    reg.register(
        "turns",
        "Owner turns committed by this process",
        c.turns.clone(),
    );
    reg.register(
        "reasks",
        "Questions asked again because the input was not understood",
        c.reasks.clone(),
    );
    let routed = Family::<PlatformLabel, Gauge>::default();
    for (platform, n) in &ops.cases_routed {
        routed
            .get_or_create(&PlatformLabel {
                platform: platform.clone(),
            })
            .set(*n);
    }
    reg.register(
        "cases_routed",
        "Cases routed to a hub, by the owner's platform (stored)",
        routed,
    );
    let deliveries = Family::<DeliveryLabel, Gauge>::default();
    // Both statuses are always shown, so an alert on `failed` sees a 0.
    for t in ["discord", "local"] {
        for s in ["pending", "failed"] {
            deliveries
                .get_or_create(&DeliveryLabel {
                    transport: t.into(),
                    status: s.into(),
                })
                .set(0);
        }
    }
    for (t, s, n) in &ops.deliveries {
        deliveries
            .get_or_create(&DeliveryLabel {
                transport: t.clone(),
                status: s.clone(),
            })
            .set(*n);
    }
    reg.register(
        "deliveries",
        "Case deliveries pending or failed, by transport (stored)",
        deliveries,
    );
    let relays = Family::<RelayLabel, Gauge>::default();
    for (t, k, s, n) in &ops.relays {
        relays
            .get_or_create(&RelayLabel {
                transport: t.clone(),
                kind: k.clone(),
                status: s.clone(),
            })
            .set(*n);
    }
    reg.register(
        "relays",
        "Relay messages (to owners, to case threads, erase jobs) pending or failed, by transport and kind (stored); pending ones include those waiting for a case post that failed",
        relays,
    );
    let due = Gauge::<i64>::default();
    due.set(ops.reminders_due);
    reg.register(
        "reminders_due",
        "Open cases past their hub's claim limit in business hours (stored)",
        due,
    );
    let sent = Gauge::<i64>::default();
    sent.set(ops.reminders_sent);
    reg.register(
        "reminders_sent",
        "Reminders and escalations recorded in the audit log (stored)",
        sent,
    );
    let mut out = String::new();
    encode_registry(&mut out, &reg).expect("writing to a String does not fail");
    encode_eof(&mut out).expect("writing to a String does not fail");
    Ok(out)
}
