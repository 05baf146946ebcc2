//! Issue 15 on Slack: two instances connected at once. Socket Mode hands
//! each envelope to one of an app's connections, so with two `madoguchi
//! run` on one database an owner's presses and messages alternate between
//! them (the stand-in spreads envelopes round robin, as Slack spreads them
//! over connections). Each instance keeps what it last saw of the owner's
//! current question in memory; a press on a question the other instance
//! asked must still count, and no owner is told "that was an earlier
//! question" for the question in front of them.

use super::*;

/// A second app on the same store and dialogs: its own runner (and session
/// cache), its own Socket Mode connection, as a second `madoguchi run`
/// would have. Deliveries stay with the first app's outbox.
async fn second_app(h: &Harness) -> RunningSlack {
    let bundle = madoguchi::script::load_dir(&h.dialogs).unwrap();
    let rc = madoguchi::runner::RunnerConfig {
        transports: vec!["slack".into()],
        ..Default::default()
    };
    let runner = Arc::new(
        Runner::new(h.store.clone(), h.clock.clone(), bundle, rc)
            .await
            .unwrap(),
    );
    let ocfg = OutboxConfig {
        poll_interval_ms: 50,
        backoff_base_ms: 50,
        ..Default::default()
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let before = h.slack.socket_stats().connections;
    let app = slack::start(h.config(), runner, slack::Deliveries::Elsewhere(wake), ocfg)
        .await
        .expect("the second app starts");
    h.slack
        .wait_socket(|s| s.connections > before && s.live >= 2)
        .await;
    app
}

#[tokio::test]
async fn a_consultation_goes_on_whichever_instance_gets_each_press() {
    let mut h = Harness::new().await;
    let second = second_app(&h).await;
    let case = h.consult("株式会社ふたつの窓口", |_| {}).await;

    // Both instances served the owner: the envelopes went to two
    // connections.
    let conns: std::collections::BTreeSet<u64> = h
        .slack
        .envelopes()
        .iter()
        .filter(|e| e.kind == "interactive")
        .filter_map(|e| e.conn)
        .collect();
    assert_eq!(conns.len(), 2, "presses reached both instances: {conns:?}");
    // No press was refused as belonging to an earlier question.
    let notes: Vec<String> = h
        .slack
        .calls_to("chat.postEphemeral")
        .into_iter()
        .filter(|c| c.param("user") == OWNER)
        .map(|c| c.param("text").to_string())
        .collect();
    assert!(notes.is_empty(), "the owner was told: {notes:?}");
    // The case was made once and is delivered.
    let cases = h.store.cases_of_user(&h.owner()).await.unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    let d = h.delivered(case, "hyogo-pro").await;
    assert_eq!(d.status, DeliveryStatus::Delivered, "{d:?}");
    second.shutdown().await;
    h.finish().await;
}
