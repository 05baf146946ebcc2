//! Step 5 on Discord, end to end through the Discord stand-in and the real
//! serenity client: a Discord owner whose case was closed as a match is
//! DMed the follow-up when it comes due (the bot's clock is fixed and
//! moved between restarts, never waited for), answers it with buttons and
//! text, and the answers reach the step-5 hub's channel once; the next
//! follow-up is declined for good, and nothing is offered or reminded
//! again. Each offer is sent exactly once across the restarts.

use super::*;
use chrono::{DateTime, TimeZone, Utc};
use madoguchi::followup;
use madoguchi::runner::FixedClock;
use madoguchi::store::{CaseChange, FollowUpStatus};

const ASK: &str = "おたずねしてもよろしいですか";
const REMINDER: &str = "採用後のフォローアップのおたずねがまだ途中です";

impl Harness {
    /// Stops the bot, sets the fixed clock to `at` and starts it again.
    async fn restart_at(&mut self, clock: &Arc<FixedClock>, at: DateTime<Utc>) {
        self.stop_bot().await;
        clock.set(at);
        self.clock = clock.clone();
        self.start_bot().await;
    }

    /// The bot's DM messages whose content contains `text`.
    fn dm_messages_with(&self, text: &str) -> usize {
        let dm = self.dm();
        self.discord
            .calls()
            .iter()
            .filter_map(|c| dm_reply(c, dm))
            .filter(|m| m["content"].as_str().is_some_and(|s| s.contains(text)))
            .count()
    }

    async fn follow_up_statuses(&self, case: CaseId) -> Vec<FollowUpStatus> {
        self.store
            .follow_ups_of_case(case)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.status)
            .collect()
    }
}

#[tokio::test]
async fn a_discord_owner_answers_a_follow_up_in_the_dm_then_declines_the_next_once_each() {
    let mut h = Harness::new().await;
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 1, 11, 1, 0, 0).unwrap(),
    ));
    let t0 = clock.now();
    h.restart_at(&clock, t0).await;
    let case = h.consult("株式会社ディスコード精機").await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;

    // Staff close the case as a hire three weeks later.
    clock.advance(chrono::Duration::days(21));
    h.store
        .update_case(
            case,
            &CaseChange::Close {
                outcome: "マッチング成立：副業人材と契約".into(),
            },
            &format!("discord:{STAFF_PRO}"),
            clock.now(),
        )
        .await
        .unwrap();
    let closed_at = h.store.case(case).await.unwrap().unwrap().updated_at;
    let bundle = madoguchi::script::load_dir(&h.cfg.dialogs).unwrap();
    let policy = followup::policy(&bundle).expect("the dialogs offer follow-ups");
    let due = followup::due_times(&policy, closed_at);
    assert_eq!(due.len(), 2);
    assert_eq!(h.dm_messages_with(ASK), 0);

    // Due, after a restart: the first follow-up in the DM, with its three
    // choices as buttons.
    h.restart_at(&clock, due[0]).await;
    let offer = h.next_prompt().await;
    assert!(offer["content"].as_str().unwrap().contains(ASK), "{offer}");
    for label in ["答える", "今回は答えない", "今後のフォローアップは不要"] {
        component_of(&offer, label);
    }
    // A restart right after does not offer it again: the owner answers on
    // the same message.
    h.restart_at(&clock, due[0] + chrono::Duration::minutes(5))
        .await;
    h.press("答える").await;
    h.press("順調に活躍している").await;
    h.press("スキップ").await; // the optional note
    h.press("続ける").await;
    let confirm = h.say("販路をもう一段広げたい").await;
    let shown: String = h
        .discord
        .messages_in(h.dm())
        .iter()
        .filter(|m| id_of(m) > id_of(&offer))
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(shown.contains("兵庫県商工会連合会"), "{confirm}");
    h.press_only("同意して送信する").await;
    let done = h.next_message().await;
    assert!(
        done["content"]
            .as_str()
            .unwrap()
            .contains("兵庫県商工会連合会へフォローアップのご回答をお送りしました"),
        "{done}"
    );
    let f1 = h.store.follow_ups_of_case(case).await.unwrap()[0].clone();
    assert_eq!(f1.status, FollowUpStatus::Answered);
    let answers = f1.answer_case.expect("the answers became a case");
    let d = h.delivered(answers, "hyogo-chamber").await;
    assert_eq!(d.status, DeliveryStatus::Delivered);

    // Past the reminder time, after a restart: an answered follow-up is
    // not reminded. Months later the second one is offered, and the
    // owner wants no more follow-ups.
    h.restart_at(
        &clock,
        due[0] + chrono::Duration::days(policy.remind_after_days.into()),
    )
    .await;
    h.restart_at(&clock, due[1]).await;
    let offer2 = h.next_prompt().await;
    assert!(
        offer2["content"].as_str().unwrap().contains(ASK),
        "{offer2}"
    );
    assert_eq!(h.dm_messages_with(ASK), 2, "each offer once");
    assert_eq!(h.dm_messages_with(REMINDER), 0);
    h.press_only("今後のフォローアップは不要").await;
    let stopped = h.next_message().await;
    assert!(
        stopped["content"]
            .as_str()
            .unwrap()
            .contains("今後お送りしません"),
        "{stopped}"
    );
    assert_eq!(
        h.follow_up_statuses(case).await,
        [FollowUpStatus::Answered, FollowUpStatus::Declined]
    );

    // Well past every limit, after a restart: nothing more.
    h.restart_at(&clock, due[1] + chrono::Duration::days(60))
        .await;
    assert_eq!(
        h.follow_up_statuses(case).await,
        [FollowUpStatus::Answered, FollowUpStatus::Declined]
    );
    // The answers were posted to the chamber's channel once; a declined
    // follow-up sends nothing anywhere.
    let follow_up_posts = h
        .discord
        .calls()
        .iter()
        .filter(|c| is_post(c, CHAMBER_CHANNEL))
        .filter(|c| {
            c.json()["embeds"]
                .to_string()
                .contains("採用後フォローアップ")
                || content_has(c, "採用後フォローアップ")
        })
        .count();
    assert_eq!(follow_up_posts, 1);
    assert_eq!(
        h.store
            .deliveries(answers)
            .await
            .unwrap()
            .iter()
            .map(|d| d.hub_id.as_str())
            .collect::<Vec<_>>(),
        ["hyogo-chamber"]
    );
    assert_eq!(h.dm_messages_with(ASK), 2);
    assert_eq!(h.dm_messages_with(REMINDER), 0);
    assert!(h
        .audit_actions(case)
        .await
        .contains(&"follow_up_declined".to_string()));
    h.finish().await;
}

/// A Discord owner who leaves the follow-up open is reminded once (a note
/// and the open question again), then it is recorded as unanswered; the
/// reminder is sent once across restarts.
#[tokio::test]
async fn a_discord_owner_who_leaves_the_follow_up_is_reminded_once() {
    let mut h = Harness::new().await;
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 1, 11, 1, 0, 0).unwrap(),
    ));
    h.restart_at(&clock, clock.now()).await;
    let case = h.consult("株式会社リマインド").await;
    clock.advance(chrono::Duration::days(3));
    h.store
        .update_case(
            case,
            &CaseChange::Close {
                outcome: "採用".into(),
            },
            &format!("discord:{STAFF_PRO}"),
            clock.now(),
        )
        .await
        .unwrap();
    let closed_at = h.store.case(case).await.unwrap().unwrap().updated_at;
    let bundle = madoguchi::script::load_dir(&h.cfg.dialogs).unwrap();
    let policy = followup::policy(&bundle).unwrap();
    let due = followup::due_times(&policy, closed_at)[0];
    h.restart_at(&clock, due).await;
    h.next_prompt().await;
    h.press("答える").await;
    let remind_at = due + chrono::Duration::days(policy.remind_after_days.into());
    h.restart_at(&clock, remind_at).await;
    let note = h.next_message().await;
    assert!(
        note["content"].as_str().unwrap().contains(REMINDER),
        "{note}"
    );
    let again = h.next_prompt().await;
    assert!(
        again["content"]
            .as_str()
            .unwrap()
            .contains("職場になじんで活躍していますか"),
        "{again}"
    );
    h.restart_at(&clock, remind_at + chrono::Duration::hours(1))
        .await;
    let limit = due + chrono::Duration::days(policy.unanswered_after_days.into());
    h.restart_at(&clock, limit).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while h.follow_up_statuses(case).await[0] != FollowUpStatus::Unanswered {
        assert!(tokio::time::Instant::now() < deadline, "never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(h.dm_messages_with(REMINDER), 1);
    assert_eq!(h.dm_messages_with(ASK), 1);
    h.finish().await;
}
