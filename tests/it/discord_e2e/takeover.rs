//! Issue 15: no typed answer lands on another question than the one it was
//! typed under, and no owner is asked a question twice, when an instance
//! dies between committing a turn and telling the owner (a failover to the
//! standby, or a restart). The dying instance is modelled exactly: its
//! commit is made through a runner on the same database while no bot runs,
//! or its record of the question it showed is set back to the one before,
//! as when the prompt writer had not saved it yet. Discord's answers are
//! made to fail by the stand-in, never by timing.

use super::*;
use madoguchi::store::LivePrompt;

const NOTE: &str = "前の質問をご覧になっている間に送られた";

/// Walks the shipped consultation to the first of three free-text
/// questions in a row (the position, then the work, then the experience
/// wanted); returns that question's message.
async fn to_three_text_questions(h: &mut Harness) -> Value {
    h.say("こんにちは").await;
    h.press("はい").await;
    h.say("株式会社テイクオーバー").await;
    h.press("製造業").await;
    h.prefecture("kinki", "兵庫県").await;
    h.say("30").await;
    h.press("スキップ").await;
    h.in_form("成長したい").await;
    h.choose("q:", &["hiring"]).await;
    h.say("採用").await;
    h.press("スキップ").await;
    h.press("人材の採用・活用で解決したい").await;
    h.press("おおよそ決まっている").await
}

/// The owner's answers in their open consultation: (node, raw), in order.
async fn answers(h: &Harness) -> Vec<(String, String)> {
    let s = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    h.store
        .answers(s.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.node, r.raw))
        .collect()
}

fn text(v: &Value) -> &str {
    v["content"].as_str().unwrap_or_default()
}

/// Discord answers the bot's next posts in the owner's DM with a server
/// error (`Bot::send` tries four times).
fn lose_next_dm_post(h: &Harness, times: usize) {
    h.discord.fail_next(
        "POST",
        &format!("/channels/{}/messages", h.dm()),
        500,
        json!({ "message": "oops", "code": 0 }),
        times,
    );
}

async fn failed_dm_posts(h: &Harness, n: usize) {
    let dm = h.dm();
    h.discord
        .wait_for(|calls| {
            calls
                .iter()
                .filter(|c| {
                    c.method == "POST"
                        && c.path == format!("/channels/{dm}/messages")
                        && c.status == 500
                })
                .count()
                >= n
        })
        .await;
}

/// The instance that led committed the owner's answer and died before its
/// reply went out; the next one's re-sent question did not reach the owner
/// either when the owner, who got no reply, typed their answer again. That
/// answer belongs to the question the owner saw, which is already
/// answered: it must not become the answer to the next question.
#[tokio::test]
async fn an_answer_typed_again_after_a_takeover_does_not_land_on_the_next_question() {
    let mut h = Harness::new().await;
    let position = to_three_text_questions(&mut h).await;
    h.stop_bot().await;
    let runner = Runner::new(
        h.store.clone(),
        Arc::new(SystemClock),
        madoguchi::script::load_dir(&h.cfg.dialogs).unwrap(),
        discord::runner_config(&h.cfg),
    )
    .await
    .unwrap();
    runner
        .handle(&h.owner(), Input::Text("工場長".into()), None)
        .await
        .unwrap();
    drop(runner);
    let before = answers(&h).await;
    let position_node = before.last().unwrap().0.clone();
    assert_eq!(before.last().unwrap().1, "工場長");

    lose_next_dm_post(&h, 4);
    h.start_bot().await;
    failed_dm_posts(&h, 4).await;
    // The owner saw the position question last and types their answer
    // to it again.
    h.discord.user_sends_dm(OWNER, "工場長").await;
    let p = h.next_prompt().await;
    assert!(text(&p).contains(NOTE), "the owner is told: {p}");
    assert_eq!(
        answers(&h).await,
        before,
        "the message typed under the position question answers nothing else"
    );
    // The command buttons name the question's node: the question asked
    // is the next one, not the one answered.
    assert_ne!(p["components"], position["components"], "{p}");

    // The next question is answered normally.
    h.say("生産管理").await;
    let a = answers(&h).await;
    assert_eq!(a.len(), before.len() + 1, "{a:?}");
    assert_ne!(a.last().unwrap().0, position_node);
    assert_eq!(a.last().unwrap().1, "生産管理");
    h.finish().await;
}

/// The same on one instance: the reply to a committed answer fails, the
/// owner is told something went wrong and types the answer again.
#[tokio::test]
async fn an_answer_typed_again_after_a_lost_reply_does_not_land_on_the_next_question() {
    let mut h = Harness::new().await;
    to_three_text_questions(&mut h).await;
    lose_next_dm_post(&h, 4);
    h.discord.user_sends_dm(OWNER, "工場長").await;
    failed_dm_posts(&h, 4).await;
    let sorry = h.next_message().await;
    assert!(text(&sorry).contains("申し訳ありません"), "{sorry}");
    let before = answers(&h).await;
    assert_eq!(before.last().unwrap().1, "工場長");

    let p = h.say("工場長").await;
    assert!(text(&p).contains(NOTE), "the owner is told: {p}");
    assert_eq!(answers(&h).await, before);
    h.say("生産管理").await;
    let a = answers(&h).await;
    assert_eq!(a.last().unwrap().1, "生産管理");
    assert_eq!(a.len(), before.len() + 1);
    h.finish().await;
}

/// Two messages typed in a row under one question: the second was written
/// before the next question was posted, so it is not that question's
/// answer.
#[tokio::test]
async fn a_second_message_typed_before_the_next_question_is_not_its_answer() {
    let mut h = Harness::new().await;
    to_three_text_questions(&mut h).await;
    // Both messages exist before the bot handles the first: the stand-in
    // creates a message when the owner sends it.
    let dm = h.dm();
    let posts = |calls: &[RecordedCall]| calls.iter().filter(|c| is_post(c, dm)).count();
    let n = posts(&h.discord.calls());
    h.discord.user_sends_dm(OWNER, "工場長").await;
    h.discord.user_sends_dm(OWNER, "（製造部門の）").await;
    let calls = h.discord.wait_for(|c| posts(c) >= n + 2).await;
    let replies: Vec<&RecordedCall> = calls.iter().filter(|c| is_post(c, dm)).skip(n).collect();
    let first = replies[0].response.clone().unwrap();
    let second = replies[1].response.clone().unwrap();
    // The bot may take the two in either order (each event is handled in
    // a task of its own): the one it takes first answers the position
    // question, and the other, typed before the next question existed,
    // answers nothing.
    let a = answers(&h).await;
    let typed = ["工場長", "（製造部門の）"];
    assert_eq!(
        a.iter()
            .filter(|(_, raw)| typed.contains(&raw.as_str()))
            .count(),
        1,
        "{a:?}"
    );
    assert!(!text(&first).contains(NOTE), "{first}");
    assert!(text(&second).contains(NOTE), "{second}");
    h.last = Some(replies[1].index);
    h.prompt = second;
    h.say("生産管理").await;
    assert_eq!(answers(&h).await.last().unwrap().1, "生産管理");
    h.finish().await;
}

/// The instance that led sent the next question but died before recording
/// that it had (the prompt writer saves behind the turn): the next one
/// finds the question in the DM, does not ask it again, and the owner's
/// answer typed under it is its answer.
#[tokio::test]
async fn a_question_shown_but_not_recorded_is_not_asked_twice() {
    let mut h = Harness::new().await;
    let position = to_three_text_questions(&mut h).await;
    let work = h.say("工場長").await;
    h.stop_bot().await;
    // What the store held when the leader died: the position question.
    let shown = h.store.live_prompt(&h.owner()).await.unwrap().unwrap();
    assert_eq!(shown.message_id, id_of(&work).to_string());
    let position_node = answers(&h).await.last().unwrap().0.clone();
    h.store
        .set_live_prompt(&LivePrompt {
            node: position_node,
            message_id: id_of(&position).to_string(),
            data: position["components"].clone(),
            ..shown
        })
        .await
        .unwrap();
    let dm = h.dm();
    let posts = |calls: &[RecordedCall]| calls.iter().filter(|c| is_post(c, dm)).count();
    let n = posts(&h.discord.calls());
    h.start_bot().await;
    h.discord.user_sends_dm(OWNER, "生産管理").await;
    let next = h.next_prompt().await;
    let calls = h.discord.calls();
    let after: Vec<&Value> = calls
        .iter()
        .filter(|c| is_post(c, dm))
        .skip(n)
        .filter_map(|c| c.response.as_ref())
        .collect();
    assert_eq!(
        after.len(),
        1,
        "one message after the start, the answer's: {after:#?}"
    );
    assert!(!text(&next).contains("前回の続きから再開します"), "{next}");
    assert!(!text(&next).contains(NOTE), "{next}");
    assert_eq!(answers(&h).await.last().unwrap().1, "生産管理");
    h.finish().await;
}
