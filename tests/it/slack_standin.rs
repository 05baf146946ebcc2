//! The Slack stand-in (`crates/slack-standin`) driven by the REAL slack-morphism client:
//! its Web API answers, Socket Mode envelopes and faults are read exactly as the bot's
//! Slack adapter will read them. These are also the usage examples of its README.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use slack_standin::slack_morphism::errors::SlackClientError;
use slack_standin::slack_morphism::prelude::*;
use slack_standin::slack_morphism::{md, pt};
use slack_standin::{element, SlackStandIn};
use tokio::sync::mpsc;

const OWNER: &str = "U0OWNER001";
const STAFF: &str = "U0STAFF001";
const HUB: &str = "C0HUB00001";

fn world(slack: &SlackStandIn) {
    slack.add_user(OWNER, "owner");
    slack.add_user(STAFF, "staff");
    slack.add_channel(HUB, "hub-cases", &[STAFF]);
    slack.add_usergroup("S0STAFF001", "hub-staff", &[STAFF]);
}

/// What the bot's Socket Mode callbacks saw, for the test to wait on.
#[derive(Debug)]
enum Seen {
    Message {
        user: String,
        channel: String,
        text: String,
        bot: bool,
    },
    HomeOpened(String),
    Action {
        action_id: String,
        values: Vec<String>,
        channel: String,
    },
    Command {
        command: String,
        text: String,
        trigger: String,
    },
    Submission {
        values: Value,
    },
}

/// What the bot's callbacks share (slack-morphism's callbacks are plain `fn`s; state
/// travels in the listener environment's user state).
struct BotState {
    tx: mpsc::UnboundedSender<Seen>,
    token: SlackApiToken,
}

async fn bot_state(
    states: &SlackClientEventsUserState,
) -> (mpsc::UnboundedSender<Seen>, SlackApiToken) {
    let guard = states.read().await;
    let s = guard.get_user_state::<BotState>().expect("bot state");
    (s.tx.clone(), s.token.clone())
}

/// Reports every event to the test and answers a DM "ping" with "pong" through
/// `chat.postMessage`.
async fn on_push(
    ev: SlackPushEventCallback,
    client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let (tx, token) = bot_state(&states).await;
    match ev.event {
        SlackEventCallbackBody::Message(m) => {
            let text = m
                .content
                .as_ref()
                .and_then(|c| c.text.clone())
                .unwrap_or_default();
            let channel = m.origin.channel.clone().map(|c| c.0).unwrap_or_default();
            let bot = m.sender.bot_id.is_some();
            let _ = tx.send(Seen::Message {
                user: m.sender.user.clone().map(|u| u.0).unwrap_or_default(),
                channel: channel.clone(),
                text: text.clone(),
                bot,
            });
            if !bot && text == "ping" {
                let req = SlackApiChatPostMessageRequest::new(
                    channel.into(),
                    SlackMessageContent::new().with_text("pong".into()),
                );
                client.open_session(&token).chat_post_message(&req).await?;
            }
        }
        SlackEventCallbackBody::AppHomeOpened(h) => {
            let _ = tx.send(Seen::HomeOpened(h.user.0));
        }
        _ => {}
    }
    Ok(())
}

/// A view submission whose text is "エラー" is answered with `response_action: errors`.
async fn on_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let (tx, _) = bot_state(&states).await;
    match ev {
        SlackInteractionEvent::BlockActions(b) => {
            let a = b.actions.unwrap_or_default().remove(0);
            let mut values: Vec<String> = a.value.into_iter().collect();
            values.extend(a.selected_option.map(|o| o.value));
            values.extend(
                a.selected_options
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| o.value),
            );
            let channel = b.channel.map(|c| c.id.0).unwrap_or_default();
            let _ = tx.send(Seen::Action {
                action_id: a.action_id.0,
                values,
                channel,
            });
        }
        SlackInteractionEvent::ViewSubmission(v) => {
            let values = serde_json::to_value(v.view.state_params.state).unwrap();
            let refuse = values["values"]["detail_block"]["detail"]["value"] == "エラー";
            let _ = tx.send(Seen::Submission { values });
            if refuse {
                let mut errors = std::collections::HashMap::new();
                errors.insert("detail_block".to_string(), "もう少し詳しく".to_string());
                return Ok(SlackViewSubmissionResponse::Errors(
                    SlackViewSubmissionErrorsResponse::new(errors),
                )
                .into());
            }
        }
        _ => {}
    }
    Ok(SlackInteractionResponse::Empty)
}

async fn on_command(
    ev: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let (tx, _) = bot_state(&states).await;
    let _ = tx.send(Seen::Command {
        command: ev.command.0,
        text: ev.text.unwrap_or_default(),
        trigger: ev.trigger_id.0,
    });
    Ok(SlackCommandEventResponse::new(
        SlackMessageContent::new().with_text("受け付けました".into()),
    ))
}

/// A minimal bot on slack-morphism's Socket Mode listener with `connections` sockets.
async fn start_bot(
    slack: &SlackStandIn,
    connections: u32,
) -> (
    SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
    mpsc::UnboundedReceiver<Seen>,
) {
    let (tx, rx) = mpsc::unbounded_channel::<Seen>();
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_push_events(on_push)
        .with_interaction_events(on_interaction)
        .with_command_events(on_command);
    let env = Arc::new(
        SlackClientEventsListenerEnvironment::new(slack.client()).with_user_state(BotState {
            tx,
            token: slack.bot_token(),
        }),
    );
    let config = SlackClientSocketModeConfig::new()
        .with_max_connections_count(connections)
        .with_initial_backoff_in_seconds(1)
        .with_reconnect_timeout_in_seconds(1);
    let listener = SlackClientSocketModeListener::new(&config, env, callbacks);
    listener
        .listen_for(&slack.app_token())
        .await
        .expect("listen_for");
    listener.start().await;
    (listener, rx)
}

async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>, pred: impl Fn(&Seen) -> bool) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = rx.recv().await.expect("bot callbacks ended");
            if pred(&s) {
                return s;
            }
        }
    })
    .await
    .expect("the bot did not see the expected event within 10 s")
}

#[tokio::test]
async fn web_api_through_slack_morphism() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let client = slack.client();
    let token = slack.bot_token();
    let session = client.open_session(&token);

    let auth = session.auth_test().await.expect("auth.test");
    assert_eq!(auth.user_id.0, slack.bot_user_id());
    assert_eq!(auth.bot_id.unwrap().0, slack.bot_id());

    // A case post with blocks and metadata, then a reply in its thread.
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(md!("*新しい相談* &lt;!channel&gt;"))
            .into(),
        SlackActionsBlock::new(vec![SlackBlockButtonElement::new(pt!("担当する"))
            .with_action_id("claim".into())
            .with_value("case-1".into())
            .into()])
        .into(),
    ];
    let mut payload = std::collections::HashMap::new();
    payload.insert("delivery_id".to_string(), "dlv-42".to_string());
    let post = SlackApiChatPostMessageRequest::new(
        HUB.into(),
        SlackMessageContent::new()
            .with_text("新しい相談".into())
            .with_blocks(blocks)
            .with_metadata(
                SlackMessageMetadata::new("madoguchi_delivery".into()).with_event_payload(payload),
            ),
    )
    .with_unfurl_links(false)
    .with_unfurl_media(false);
    let posted = session
        .chat_post_message(&post)
        .await
        .expect("chat.postMessage");
    assert_eq!(posted.channel.0, HUB);
    let reply = SlackApiChatPostMessageRequest::new(
        HUB.into(),
        SlackMessageContent::new().with_text("企業情報シート（続き）".into()),
    )
    .with_thread_ts(posted.ts.clone());
    let replied = session
        .chat_post_message(&reply)
        .await
        .expect("thread reply");

    // History finds the post by its metadata only when asked for metadata.
    let plain = session
        .conversations_history(&SlackApiConversationsHistoryRequest::new().with_channel(HUB.into()))
        .await
        .expect("history");
    assert_eq!(plain.messages.len(), 1, "a thread reply is not in history");
    assert!(plain.messages[0].content.metadata.is_none());
    let with_md = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new()
                .with_channel(HUB.into())
                .with_include_all_metadata(true),
        )
        .await
        .expect("history with metadata");
    let md = with_md.messages[0]
        .content
        .metadata
        .clone()
        .expect("metadata");
    assert_eq!(md.event_type, "madoguchi_delivery");
    assert_eq!(md.event_payload.unwrap()["delivery_id"], "dlv-42");
    assert_eq!(with_md.messages[0].parent.reply_count, Some(1));

    let thread = session
        .conversations_replies(&SlackApiConversationsRepliesRequest::new(
            HUB.into(),
            posted.ts.clone(),
        ))
        .await
        .expect("replies");
    assert_eq!(thread.messages.len(), 2);
    assert_eq!(thread.messages[1].origin.ts, replied.ts);

    // Update, ephemeral, delete.
    let upd = SlackApiChatUpdateRequest::new(
        HUB.into(),
        SlackMessageContent::new().with_text("担当: staff".into()),
        posted.ts.clone(),
    );
    session.chat_update(&upd).await.expect("chat.update");
    assert_eq!(slack.message(&posted.ts.0).unwrap()["text"], "担当: staff");
    assert!(
        slack.message(&posted.ts.0).unwrap()["blocks"].is_array(),
        "blocks kept when not given"
    );
    let eph = SlackApiChatPostEphemeralRequest::new(
        HUB.into(),
        OWNER.into(),
        SlackMessageContent::new().with_text("権限がありません".into()),
    );
    let refused = session.chat_post_ephemeral(&eph).await;
    assert!(
        matches!(&refused, Err(SlackClientError::ApiError(e)) if e.code == "user_not_in_channel"),
        "{refused:?}"
    );
    let eph = SlackApiChatPostEphemeralRequest::new(
        HUB.into(),
        STAFF.into(),
        SlackMessageContent::new().with_text("権限がありません".into()),
    );
    session
        .chat_post_ephemeral(&eph)
        .await
        .expect("chat.postEphemeral");
    assert_eq!(
        slack.ephemerals(HUB, STAFF)[0].json["text"],
        "権限がありません"
    );
    session
        .chat_delete(&SlackApiChatDeleteRequest::new(
            HUB.into(),
            replied.ts.clone(),
        ))
        .await
        .expect("chat.delete");
    assert_eq!(slack.thread(HUB, &posted.ts.0).len(), 1);

    // The DM, users and groups.
    let opened = session
        .conversations_open(&SlackApiConversationsOpenRequest::new().with_users(vec![OWNER.into()]))
        .await
        .expect("conversations.open");
    assert_eq!(
        Some(opened.channel.id.0.clone()),
        slack.dm_channel_of(OWNER)
    );
    let user = session
        .users_info(&SlackApiUsersInfoRequest::new(OWNER.into()).with_include_locale(true))
        .await
        .expect("users.info");
    assert_eq!(user.user.locale.map(|l| l.0), Some("ja-JP".into()));
    let members = session
        .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new(
            "S0STAFF001".into(),
        ))
        .await
        .expect("usergroups.users.list");
    assert_eq!(members.users, vec![SlackUserId(STAFF.into())]);

    // Slack's error shapes as the client reports them.
    let missing = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0NOWHERE".into(),
            SlackMessageContent::new().with_text("x".into()),
        ))
        .await;
    assert!(
        matches!(&missing, Err(SlackClientError::ApiError(e)) if e.code == "channel_not_found"),
        "{missing:?}"
    );
    let unknown = session.api_test(&SlackApiTestRequest::new()).await;
    assert!(
        matches!(&unknown, Err(SlackClientError::ApiError(e)) if e.code == "unknown_method"),
        "{unknown:?}"
    );
    let wrong = client
        .open_session(&SlackApiToken::new("xoxb-wrong".into()))
        .auth_test()
        .await;
    assert!(
        matches!(&wrong, Err(SlackClientError::ApiError(e)) if e.code == "invalid_auth"),
        "{wrong:?}"
    );

    assert_eq!(slack.call_count("chat.postMessage"), 3);
    assert_eq!(
        slack.calls_to("chat.postMessage")[0].params["unfurl_links"],
        false
    );
    assert!(
        slack.stand_in_errors().is_empty(),
        "{:#?}",
        slack.stand_in_errors()
    );
}

#[tokio::test]
async fn socket_mode_delivers_and_records_acks() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let (listener, mut seen) = start_bot(&slack, 1).await;
    slack.wait_connected().await;

    // A DM: the bot sees it, acks it, and answers through the Web API.
    let ts = slack.user_sends_dm(OWNER, "ping").await;
    let dm = slack.dm_channel_of(OWNER).unwrap();
    let s = next_seen(&mut seen, |s| matches!(s, Seen::Message { bot: false, .. })).await;
    assert!(
        matches!(&s, Seen::Message { user, channel, text, .. } if user == OWNER && channel == &dm && text == "ping"),
        "{s:?}"
    );
    let pong = slack
        .wait_for_call(|c| c.method == "chat.postMessage" && c.ok())
        .await;
    assert_eq!(pong.params["channel"], dm.as_str());
    // Slack echoes the bot's own message back as an event with bot_id.
    next_seen(
        &mut seen,
        |s| matches!(s, Seen::Message { bot: true, text, .. } if text == "pong"),
    )
    .await;
    let first = slack.envelopes()[0].clone();
    assert_eq!(first.kind, "events_api");
    let ack = slack.wait_for_ack(&first.envelope_id).await;
    assert!(ack.within_deadline && !ack.lost);
    let msgs = slack.messages_in(&dm);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["ts"], ts.as_str());
    assert_eq!(msgs[1]["text"], "pong");

    // A button and a select on a message the bot posted.
    let client = slack.client();
    let token = slack.bot_token();
    let session = client.open_session(&token);
    let q = SlackApiChatPostMessageRequest::new(
        dm.clone().into(),
        SlackMessageContent::new()
            .with_text("業種は？".into())
            .with_blocks(vec![SlackActionsBlock::new(vec![
                SlackBlockButtonElement::new(pt!("はい"))
                    .with_action_id("answer:yes".into())
                    .with_value("yes".into())
                    .into(),
                SlackBlockStaticSelectElement::new()
                    .with_action_id("industry".into())
                    .with_options(vec![
                        SlackBlockChoiceItem::new(pt!("製造業"), "manufacturing".into()),
                        SlackBlockChoiceItem::new(pt!("小売業"), "retail".into()),
                    ])
                    .into(),
                SlackBlockCheckboxesElement::new(vec![
                    SlackBlockChoiceItem::new(
                        SlackBlockText::MarkDown(SlackBlockMarkDownText::new("資金繰り".into())),
                        "funds".into(),
                    ),
                    SlackBlockChoiceItem::new(
                        SlackBlockText::MarkDown(SlackBlockMarkDownText::new("人材".into())),
                        "people".into(),
                    ),
                ])
                .with_action_id("topics".into())
                .into(),
            ])
            .into()]),
    );
    let q = session.chat_post_message(&q).await.unwrap();
    let msg = slack.message(&q.ts.0).unwrap();
    assert_eq!(
        element(&msg["blocks"], "はい").unwrap()["action_id"],
        "answer:yes"
    );
    let env = slack
        .user_clicks_button(OWNER, &dm, &q.ts.0, "answer:yes")
        .await;
    let s = next_seen(&mut seen, |s| matches!(s, Seen::Action { .. })).await;
    assert!(
        matches!(&s, Seen::Action { action_id, values, channel } if action_id == "answer:yes" && values == &["yes"] && channel == &dm),
        "{s:?}"
    );
    assert!(slack.wait_for_ack(&env).await.within_deadline);
    slack
        .user_selects(OWNER, &dm, &q.ts.0, "industry", &["retail"])
        .await;
    let s = next_seen(&mut seen, |s| matches!(s, Seen::Action { .. })).await;
    assert!(
        matches!(&s, Seen::Action { action_id, values, .. } if action_id == "industry" && values == &["retail"]),
        "{s:?}"
    );
    slack
        .user_selects(OWNER, &dm, &q.ts.0, "topics", &["funds", "people"])
        .await;
    let s = next_seen(&mut seen, |s| matches!(s, Seen::Action { .. })).await;
    assert!(
        matches!(&s, Seen::Action { values, .. } if values == &["funds", "people"]),
        "{s:?}"
    );

    // A slash command whose ack carries a reply (shown to the user only), then a modal
    // opened with its trigger and submitted.
    let env = slack
        .user_runs_slash_command(OWNER, "", "/consult", "")
        .await;
    let s = next_seen(&mut seen, |s| matches!(s, Seen::Command { .. })).await;
    let Seen::Command {
        command,
        trigger,
        text,
    } = s
    else {
        unreachable!()
    };
    assert_eq!((command.as_str(), text.as_str()), ("/consult", ""));
    let ack = slack.wait_for_ack(&env).await;
    assert_eq!(ack.payload.unwrap()["text"], "受け付けました");
    assert_eq!(
        slack.ephemerals(&dm, OWNER).last().unwrap().json["text"],
        "受け付けました"
    );
    let view = SlackView::Modal(
        SlackModalView::new(
            pt!("ご相談内容"),
            vec![SlackInputBlock::new(
                pt!("詳しく"),
                SlackInputBlockElement::PlainTextInput(
                    SlackBlockPlainTextInputElement::new()
                        .with_action_id("detail".into())
                        .with_multiline(true),
                ),
            )
            .with_block_id("detail_block".into())
            .into()],
        )
        .with_submit(pt!("送信"))
        .with_callback_id("long_answer".into()),
    );
    let opened = session
        .views_open(&SlackApiViewsOpenRequest::new(trigger.into(), view))
        .await
        .expect("views.open");
    let view_id = opened.view.state_params.id.0.clone();
    assert_eq!(slack.wait_for_view(OWNER).await.id, view_id);
    // Refused with errors: the modal stays open and shows them.
    let env = slack
        .user_submits_modal(OWNER, &view_id, json!({ "detail": "エラー" }))
        .await;
    next_seen(&mut seen, |s| matches!(s, Seen::Submission { .. })).await;
    let ack = slack.wait_for_ack(&env).await;
    assert_eq!(ack.payload.unwrap()["response_action"], "errors");
    let open = slack.open_view_of(OWNER).expect("still open");
    assert_eq!(
        open.json["standin_errors"]["detail_block"],
        "もう少し詳しく"
    );
    slack
        .user_submits_modal(
            OWNER,
            &view_id,
            json!({ "detail": "売上が落ちて\n資金が不安です" }),
        )
        .await;
    let s = next_seen(&mut seen, |s| matches!(s, Seen::Submission { .. })).await;
    let Seen::Submission { values } = s else {
        unreachable!()
    };
    assert_eq!(
        values["values"]["detail_block"]["detail"]["value"],
        "売上が落ちて\n資金が不安です"
    );
    slack.wait_socket(|s| s.acked == s.envelopes).await;
    assert!(slack.open_view_of(OWNER).is_none(), "accepted: closed");

    slack.user_opens_app_home(OWNER, "messages").await;
    next_seen(
        &mut seen,
        |s| matches!(s, Seen::HomeOpened(u) if u == OWNER),
    )
    .await;

    listener.shutdown().await;
    assert!(
        slack.stand_in_errors().is_empty(),
        "{:#?}",
        slack.stand_in_errors()
    );
}

#[tokio::test]
async fn rate_limit_and_server_errors_as_the_client_reports_them() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let client = slack.client();
    let token = slack.bot_token();
    let session = client.open_session(&token);
    let post = SlackApiChatPostMessageRequest::new(
        HUB.into(),
        SlackMessageContent::new().with_text("case".into()),
    );

    slack.rate_limit("chat.postMessage", 7, 1);
    match session.chat_post_message(&post).await {
        Err(SlackClientError::RateLimitError(e)) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
            assert_eq!(e.code.as_deref(), Some("ratelimited"));
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
    assert!(slack.messages_in(HUB).is_empty(), "a 429 posts nothing");

    slack.fail_with_status("chat.postMessage", 500, 1);
    match session.chat_post_message(&post).await {
        Err(SlackClientError::HttpError(e)) => assert_eq!(e.status_code.as_u16(), 500),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    // Faults are per method: other methods are untouched meanwhile.
    slack.rate_limit("chat.update", 1, 1);
    session.chat_post_message(&post).await.expect("third try");
    assert_eq!(slack.messages_in(HUB).len(), 1);
    assert_eq!(slack.pending_faults(), 1);
    let injected: Vec<_> = slack.calls().iter().filter_map(|c| c.injected).collect();
    assert_eq!(injected, vec!["rate_limited", "status"]);
}

#[tokio::test]
async fn a_post_whose_response_is_lost_is_found_in_history() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let client = slack.client();
    let token = slack.bot_token();
    let session = client.open_session(&token);
    let mut payload = std::collections::HashMap::new();
    payload.insert("delivery_id".to_string(), "dlv-7".to_string());
    let post = SlackApiChatPostMessageRequest::new(
        HUB.into(),
        SlackMessageContent::new()
            .with_text("case 7".into())
            .with_metadata(
                SlackMessageMetadata::new("madoguchi_delivery".into()).with_event_payload(payload),
            ),
    );
    slack.lose_response_after_commit("chat.postMessage", Some("dlv-7"), 1);
    let lost = session.chat_post_message(&post).await;
    assert!(
        lost.is_err(),
        "the caller cannot know the post happened: {lost:?}"
    );
    // The careful sender looks before retrying, and finds its own post.
    let history = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new()
                .with_channel(HUB.into())
                .with_include_all_metadata(true)
                .with_limit(50),
        )
        .await
        .unwrap();
    let mine: Vec<_> = history
        .messages
        .iter()
        .filter(|m| {
            m.content
                .metadata
                .as_ref()
                .and_then(|md| md.event_payload.as_ref())
                .is_some_and(|p| p.get("delivery_id").map(String::as_str) == Some("dlv-7"))
        })
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        slack.calls_to("chat.postMessage")[0].injected,
        Some("dropped_after_commit")
    );
}

#[tokio::test]
async fn the_client_reconnects_after_a_dropped_socket_and_a_disconnect() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let (listener, mut seen) = start_bot(&slack, 1).await;
    slack.wait_connected().await;
    assert_eq!(slack.call_count("apps.connections.open"), 1);

    // The TCP connection drops; what the owner types meanwhile waits for the bot's next
    // connection, which it opens through apps.connections.open.
    assert_eq!(slack.drop_sockets(), 1);
    let away = slack.user_sends_dm(OWNER, "while away").await;
    slack
        .wait_socket(|s| s.connections >= 2 && s.live >= 1 && s.pending == 0)
        .await;
    next_seen(
        &mut seen,
        |s| matches!(s, Seen::Message { text, .. } if text == "while away"),
    )
    .await;
    assert_eq!(slack.call_count("apps.connections.open"), 2);
    // slack-morphism's writer stops at once when a `disconnect` restarts the client, so an
    // ack still queued would be lost; wait for it first.
    let env = slack.envelopes_for_message(&away);
    assert_eq!(env.len(), 1);
    assert!(
        slack
            .wait_for_ack(&env[0].envelope_id)
            .await
            .within_deadline
    );

    // Slack asks for a refresh: the client opens a new connection.
    assert_eq!(slack.send_disconnect("refresh_requested"), 1);
    slack
        .wait_socket(|s| s.connections >= 3 && s.live >= 1)
        .await;
    assert_eq!(slack.call_count("apps.connections.open"), 3);
    slack.user_sends_dm(OWNER, "after refresh").await;
    next_seen(
        &mut seen,
        |s| matches!(s, Seen::Message { text, .. } if text == "after refresh"),
    )
    .await;

    // An ack that never arrives: Slack retries the event with retry_attempt 1.
    slack.lose_next_acks(1);
    let retry = slack.user_sends_dm(OWNER, "retry me").await;
    next_seen(
        &mut seen,
        |s| matches!(s, Seen::Message { text, .. } if text == "retry me"),
    )
    .await;
    let first = slack.envelopes_for_message(&retry)[0].clone();
    assert!(slack.wait_for_ack(&first.envelope_id).await.lost);
    let late = slack.unacked_or_late();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].envelope_id, first.envelope_id);
    let again = slack.redeliver_unacked();
    assert_eq!(again.len(), 1);
    next_seen(
        &mut seen,
        |s| matches!(s, Seen::Message { text, .. } if text == "retry me"),
    )
    .await;
    let retried = slack.envelope(&again[0]).unwrap();
    assert_eq!(retried.frame["retry_attempt"], 1);
    assert_eq!(retried.frame["retry_reason"], "timeout");
    assert_eq!(retried.payload()["event_id"], late[0].payload()["event_id"]);

    listener.shutdown().await;
    assert!(
        slack.stand_in_errors().is_empty(),
        "{:#?}",
        slack.stand_in_errors()
    );
}

#[tokio::test]
async fn slack_refusals_as_the_client_reports_them() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let client = slack.client();
    let token = slack.bot_token();
    let session = client.open_session(&token);

    // Block Kit limits: a button label over 75 characters.
    let long = "長".repeat(76);
    let bad = SlackApiChatPostMessageRequest::new(
        HUB.into(),
        SlackMessageContent::new()
            .with_text("x".into())
            .with_blocks(vec![SlackActionsBlock::new(vec![
                SlackBlockButtonElement::new(pt!(long))
                    .with_action_id("b".into())
                    .into(),
            ])
            .into()]),
    );
    match session.chat_post_message(&bad).await {
        Err(SlackClientError::ApiError(e)) => {
            assert_eq!(e.code, "invalid_blocks");
            assert!(e
                .errors
                .unwrap_or_default()
                .iter()
                .any(|m| m.contains("76")));
        }
        other => panic!("expected invalid_blocks, got {other:?}"),
    }
    // An empty message, a reply to a missing thread, a stale trigger.
    let empty = SlackApiChatPostMessageRequest::new(HUB.into(), SlackMessageContent::new());
    let r = session.chat_post_message(&empty).await;
    assert!(
        matches!(&r, Err(SlackClientError::ApiError(e)) if e.code == "no_text"),
        "{r:?}"
    );
    let orphan = SlackApiChatPostMessageRequest::new(
        HUB.into(),
        SlackMessageContent::new().with_text("x".into()),
    )
    .with_thread_ts("1.000100".into());
    let r = session.chat_post_message(&orphan).await;
    assert!(
        matches!(&r, Err(SlackClientError::ApiError(e)) if e.code == "thread_not_found"),
        "{r:?}"
    );
    assert_eq!(
        slack.stand_in_errors().len(),
        1,
        "a reply to a missing thread is the bot's bug"
    );
    let view = SlackView::Modal(SlackModalView::new(pt!("t"), vec![]));
    let r = session
        .views_open(&SlackApiViewsOpenRequest::new("1.2.nope".into(), view))
        .await;
    assert!(
        matches!(&r, Err(SlackClientError::ApiError(e)) if e.code == "invalid_trigger_id"),
        "{r:?}"
    );
    // The bot's own token cannot open a Socket Mode URL.
    let r = session
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await;
    assert!(
        matches!(&r, Err(SlackClientError::ApiError(e)) if e.code == "not_allowed_token_type"),
        "{r:?}"
    );
    assert!(slack.messages_in(HUB).is_empty());
}

#[tokio::test]
async fn ephemeral_buttons_and_response_urls() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let (listener, mut seen) = start_bot(&slack, 1).await;
    slack.wait_connected().await;
    let client = slack.client();
    let token = slack.bot_token();
    let session = client.open_session(&token);
    let eph = SlackApiChatPostEphemeralRequest::new(
        HUB.into(),
        STAFF.into(),
        SlackMessageContent::new()
            .with_text("転送しますか".into())
            .with_blocks(vec![SlackActionsBlock::new(vec![
                SlackBlockButtonElement::new(pt!("転送"))
                    .with_value("fwd".into())
                    .into(),
            ])
            .into()]),
    );
    session.chat_post_ephemeral(&eph).await.expect("ephemeral");
    let shown = slack.ephemerals(HUB, STAFF);
    // Slack names the button when the sender did not.
    let action_id = element(&shown[0].json["blocks"], "転送").unwrap()["action_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!action_id.is_empty());
    let env = slack
        .user_clicks_button(STAFF, HUB, &shown[0].ts, &action_id)
        .await;
    next_seen(
        &mut seen,
        |s| matches!(s, Seen::Action { values, .. } if values == &["fwd"]),
    )
    .await;
    let e = slack.envelope(&env).unwrap();
    assert_eq!(e.payload()["container"]["is_ephemeral"], true);
    assert!(e.payload()["message"].is_null());
    let url: SlackResponseUrl =
        serde_json::from_value(e.payload()["response_url"].clone()).unwrap();
    client
        .respond_to_event(
            &url,
            &SlackApiPostWebhookMessageRequest::new(
                SlackMessageContent::new().with_text("転送しました".into()),
            ),
        )
        .await
        .expect("response_url");
    assert_eq!(
        slack.ephemerals(HUB, STAFF).last().unwrap().source,
        "response_url"
    );
    listener.shutdown().await;
}

#[tokio::test]
async fn envelopes_are_spread_over_the_clients_connections() {
    let slack = SlackStandIn::start().await;
    world(&slack);
    let (listener, mut seen) = start_bot(&slack, 2).await;
    slack.wait_socket(|s| s.live == 2).await;
    let mut sent = vec![];
    for i in 0..4 {
        sent.push(slack.user_sends_dm(OWNER, &format!("m{i}")).await);
    }
    // Two connections are read concurrently, so the bot may see them in any order.
    let mut texts = std::collections::BTreeSet::new();
    while texts.len() < 4 {
        if let Seen::Message { text, .. } =
            next_seen(&mut seen, |s| matches!(s, Seen::Message { .. })).await
        {
            texts.insert(text);
        }
    }
    assert_eq!(
        texts.into_iter().collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3"]
    );
    let mut conns = std::collections::BTreeSet::new();
    for ts in &sent {
        let e = slack.envelopes_for_message(ts).remove(0);
        conns.insert(e.conn.unwrap());
        assert!(slack.wait_for_ack(&e.envelope_id).await.within_deadline);
    }
    assert_eq!(conns.len(), 2, "both connections got envelopes");
    // Both drop; both come back through apps.connections.open.
    assert_eq!(slack.drop_sockets(), 2);
    slack
        .wait_socket(|s| s.live == 2 && s.connections == 4)
        .await;
    assert_eq!(slack.call_count("apps.connections.open"), 4);
    listener.shutdown().await;
    assert!(
        slack.stand_in_errors().is_empty(),
        "{:#?}",
        slack.stand_in_errors()
    );
}

#[test]
fn a_payload_slack_morphism_cannot_read_is_caught() {
    // A message event whose ts is a number: slack-morphism would file it under
    // SlackEventCallbackBody::Unknown and the bot would never see a message.
    let frame = json!({
        "type": "events_api",
        "envelope_id": "e1",
        "accepts_response_payload": false,
        "payload": {
            "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event_time": 1,
            "type": "event_callback",
            "event": { "type": "message", "ts": 1.5, "user": "U1", "text": "x", "channel": "D1" },
        },
    });
    let err = slack_standin::model::check_frame(&frame).unwrap_err();
    assert!(err.contains("Unknown"), "{err}");
    let mut good = frame.clone();
    good["payload"]["event"]["ts"] = json!("1.000100");
    slack_standin::model::check_frame(&good).expect("a well-formed message event");
}
