//! Step 5 on Slack, end to end: a Slack owner whose case was closed as a
//! match is offered the follow-up in their DM when it comes due (the app's
//! clock is fixed and moved between restarts, never waited for), reminded
//! once, recorded as unanswered, and offered the next one, which they
//! answer with buttons and text; the answers reach the step-5 hub's Slack
//! channel once. Each offer and the reminder are sent exactly once across
//! the restarts.

use super::*;
use chrono::{DateTime, TimeZone, Utc};
use madoguchi::followup;
use madoguchi::runner::FixedClock;
use madoguchi::store::{CaseChange, FollowUpStatus};

const ASK: &str = "おたずねしてもよろしいですか";
const REMINDER: &str = "採用後のフォローアップのおたずねがまだ途中です";

impl Harness {
    /// Stops the app, sets the fixed clock to `at` and starts it again.
    async fn restart_at(&mut self, clock: &Arc<FixedClock>, at: DateTime<Utc>) {
        self.stop_app().await;
        clock.set(at);
        self.clock = clock.clone();
        self.start_app().await;
    }

    /// The app's DM posts whose text contains `text`.
    fn dm_posts_with(&self, text: &str) -> usize {
        let dm = self.dm();
        self.slack
            .calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.ok() && c.param("channel") == dm)
            .filter(|c| text_of(&c.params).contains(text))
            .count()
    }

    /// Waits until the case's follow-ups have these statuses.
    async fn follow_ups_become(&self, case: CaseId, want: &[FollowUpStatus]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let now: Vec<_> = self
                .store
                .follow_ups_of_case(case)
                .await
                .unwrap()
                .into_iter()
                .map(|f| f.status)
                .collect();
            if now == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "follow-ups of {case} are {now:?}, not {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn a_slack_owner_is_followed_up_in_the_dm_once_reminded_once_and_the_chamber_gets_the_answers(
) {
    let mut h = Harness::new().await;
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 1, 11, 1, 0, 0).unwrap(),
    ));
    let t0 = clock.now();
    h.restart_at(&clock, t0).await;
    let case = h.consult("株式会社フォロー製作所", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    let chamber_posts = h.case_posts(CHAMBER_CHANNEL).len();

    // Staff close the case as a hire three weeks later.
    clock.advance(chrono::Duration::days(21));
    h.store
        .update_case(
            case,
            &CaseChange::Close {
                outcome: "採用決定（営業部長 1名）".into(),
            },
            &format!("slack:{STAFF_PRO}"),
            clock.now(),
        )
        .await
        .unwrap();
    let closed_at = h.store.case(case).await.unwrap().unwrap().updated_at;
    let bundle = madoguchi::script::load_dir(&h.dialogs).unwrap();
    let policy = followup::policy(&bundle).expect("the dialogs offer follow-ups");
    let due = followup::due_times(&policy, closed_at);
    assert_eq!(due.len(), 2);

    // A day before it is due nothing comes; when due (after a restart) the
    // first follow-up is offered in the DM with its three choices.
    let before = h.dm_posts_with(ASK);
    h.restart_at(&clock, due[0]).await;
    let offer = h.next_prompt().await;
    assert_eq!(before, 0);
    assert!(text_of(&offer).contains(ASK), "{offer}");
    for label in ["答える", "今回は答えない", "今後のフォローアップは不要"] {
        assert!(
            element(&offer["blocks"], label).is_some(),
            "no {label} on {offer}"
        );
    }
    // The owner starts answering, then leaves the dialog.
    h.press("答える").await;
    let note = h.press("順調に活躍している").await;
    assert!(text_of(&note).contains("様子をひとこと"), "{note}");

    // At the reminder time (after a restart): one note, and the open
    // question again as the live one.
    let remind_at = due[0] + chrono::Duration::days(policy.remind_after_days.into());
    h.restart_at(&clock, remind_at).await;
    let reminder = h.next_dm(false).await;
    assert!(text_of(&reminder).contains(REMINDER), "{reminder}");
    let again = h.next_prompt().await;
    assert!(text_of(&again).contains("様子をひとこと"), "{again}");

    // Still no answer at the limit: recorded as unanswered.
    let limit = due[0] + chrono::Duration::days(policy.unanswered_after_days.into());
    h.restart_at(&clock, limit).await;
    h.follow_ups_become(
        case,
        &[FollowUpStatus::Unanswered, FollowUpStatus::Scheduled],
    )
    .await;

    // The second follow-up, months later: offered although the first
    // dialog was left open, and answered this time.
    h.restart_at(&clock, due[1]).await;
    let offer2 = h.next_prompt().await;
    assert!(text_of(&offer2).contains(ASK), "{offer2}");
    // Across five starts of the app: each offer once, the reminder once.
    assert_eq!(h.dm_posts_with(ASK), 2);
    assert_eq!(h.dm_posts_with(REMINDER), 1);
    h.press("答える").await;
    h.press("気になることがある").await;
    h.say("職場環境の見直しが必要").await;
    h.press("続ける").await;
    let confirm = h.say("もう一人採用したい").await;
    assert!(
        text_of(&confirm).contains("兵庫県商工会連合会"),
        "{confirm}"
    );
    h.press_only("同意して送信する").await;
    let done = h.next_dm(false).await;
    assert!(
        text_of(&done).contains("兵庫県商工会連合会へフォローアップのご回答をお送りしました"),
        "{done}"
    );
    h.follow_ups_become(
        case,
        &[FollowUpStatus::Unanswered, FollowUpStatus::Answered],
    )
    .await;
    let f2 = h.store.follow_ups_of_case(case).await.unwrap()[1].clone();
    let answers = f2.answer_case.expect("the answers became a case");
    let d = h.delivered(answers, "hyogo-chamber").await;
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let consent = h
        .store
        .consents(&h.owner())
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.case == Some(answers))
        .expect("a consent record naming the step-5 hub");
    assert_eq!(
        consent
            .recipients
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["hyogo-chamber"]
    );

    // After one more restart: the answers were posted to the chamber's
    // Slack channel once, and nothing is left to fire.
    h.restart_at(&clock, due[1] + chrono::Duration::days(30))
        .await;
    let posts = h.case_posts(CHAMBER_CHANNEL);
    assert_eq!(posts.len(), chamber_posts + 1, "{posts:#?}");
    let post = text_of(posts.last().unwrap());
    assert!(post.contains("採用後フォローアップ"), "{post}");
    assert!(post.contains(&answers.to_string()), "{post}");
    let pending = h
        .store
        .follow_ups_of_case(case)
        .await
        .unwrap()
        .iter()
        .filter(|f| f.status.is_waiting() || f.status == FollowUpStatus::Scheduled)
        .count();
    assert_eq!(pending, 0);
    assert_eq!(h.dm_posts_with(ASK), 2);
    assert_eq!(h.dm_posts_with(REMINDER), 1);
    h.finish().await;
}
