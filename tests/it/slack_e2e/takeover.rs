//! Issue 15 on Slack: a typed message answers the question the owner saw
//! when they wrote it. The reply to a committed answer is lost (Slack
//! answers the post with server errors), the owner is told something went
//! wrong and types the answer again: it must not become the answer to the
//! next question. See `discord_e2e::takeover` for the takeover itself.

use super::*;

const NOTE: &str = "前の質問をご覧になっている間に送られた";

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

#[tokio::test]
async fn an_answer_typed_again_after_a_lost_reply_does_not_land_on_the_next_question() {
    let mut h = Harness::new().await;
    h.say("こんにちは").await;
    h.press("はい").await;
    h.say("株式会社テイクオーバー").await;
    h.press("製造業").await;
    h.choose("q:", &["兵庫県"]).await;
    h.say("30").await;
    h.press("スキップ").await;
    h.in_form("成長したい").await;
    h.tick(&["hiring"]).await;
    h.say("採用").await;
    h.press("スキップ").await;
    h.press("人材の採用・活用で解決したい").await;
    h.press("おおよそ決まっている").await;
    // `post_message` tries four times; the fifth post, the apology, goes
    // through.
    h.slack.fail_with_status("chat.postMessage", 500, 4);
    h.slack.user_sends_dm(OWNER, "営業部長").await;
    let sorry = h.next_dm(false).await;
    assert!(text_of(&sorry).contains("申し訳ありません"), "{sorry}");
    let before = answers(&h).await;
    assert_eq!(before.last().unwrap().1, "営業部長");

    let p = h.say("営業部長").await;
    assert!(text_of(&p).contains(NOTE), "the owner is told: {p}");
    assert_eq!(
        answers(&h).await,
        before,
        "the message typed under the position question answers nothing else"
    );
    h.say("新規顧客の開拓").await;
    let a = answers(&h).await;
    assert_eq!(a.len(), before.len() + 1, "{a:?}");
    assert_eq!(a.last().unwrap().1, "新規顧客の開拓");
    h.finish().await;
}
