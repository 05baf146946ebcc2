//! The owner's side on Slack: a consultation in the DM with the app,
//! started with `/consult` or by writing to the app; answers by button,
//! select, checkboxes, form (modal) or text. The Slack counterpart of
//! `discord::owner`, driving the same [`crate::runner::Runner`].
//!
//! Each turn is ONE `chat.postMessage` in the DM (what the engine says and
//! the next question, as blocks). The message carrying the current
//! question is remembered ([`LivePrompt`], `message_id` = its `ts`); a
//! press on any other message gets an ephemeral note
//! (`chat.postEphemeral`) and changes nothing. Presses are acknowledged
//! before this code runs (see the module above), so nothing here races
//! Slack's 3 seconds — except opening a modal, whose `trigger_id` must be
//! used within them: that happens first, before any lock or store read
//! that could wait.

use super::events::{checked, Action, SlashCommand, ViewSubmit};
use super::render::{self, OwnerId};
use super::{user_key, ApiFail, Bot};
use crate::discord::owner::{sorry_text, stale_text};
use crate::domain::ids::{SessionId, Transport, UserKey};
use crate::engine::{Effect, Input};
use crate::render::prompt::t;
use crate::runner::Turn;
use crate::script::{AnswerType, Command, Lang, NodeKind};
use crate::store::LivePrompt;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub(crate) enum OwnerError {
    #[error(transparent)]
    Run(#[from] crate::runner::RunError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("slack api: {0}")]
    Api(ApiFail),
}

impl From<ApiFail> for OwnerError {
    fn from(e: ApiFail) -> Self {
        OwnerError::Api(e)
    }
}

impl Bot {
    /// Posts a message, retrying a rate limit (after Slack's wait) and a
    /// server error a few times. Owner messages are not in the outbox: a
    /// turn is already committed, and an owner waiting for the next
    /// question is better served by a prompt retry than by a queue.
    pub(crate) async fn post_message(&self, body: &Value) -> Result<Value, ApiFail> {
        let mut attempt = 0;
        loop {
            match self.api.post("chat.postMessage", body).await {
                Err(ApiFail::RateLimited(w)) if attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(w).await;
                }
                Err(ApiFail::Transient(_)) if attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(250 * attempt)).await;
                }
                r => return r,
            }
        }
    }

    pub(crate) async fn ephemeral(&self, channel: &str, user: &str, text: &str) {
        let body = json!({ "channel": channel, "user": user, "text": text });
        if let Err(e) = self.api.post("chat.postEphemeral", &body).await {
            tracing::warn!(user, error = %e, "could not send an ephemeral note");
        }
    }

    /// A direct message from an owner: an answer, or the start of a
    /// consultation.
    pub(crate) async fn on_dm(&self, user: &str, channel: &str, ts: &str, text: String) {
        let Some(key) = user_key(user) else { return };
        self.remember_dm(user, channel);
        // The owner's own words for `/forget` are not an answer: they get
        // the confirmation (and nothing is deleted without it).
        if crate::privacy::is_forget_request(&text) {
            return self.on_forget_command(user, channel).await;
        }
        let lock = self.user_lock(user);
        let _g = lock.lock().await;
        let r: Result<(), OwnerError> = async {
            let open = self.runner.has_open_session(&key).await?;
            if !open && self.relay_from_owner(&key, channel, &text).await? {
                return Ok(());
            }
            let lang = if open {
                None
            } else {
                Some(self.lang_for(&key, None).await)
            };
            if !open {
                let turn = self.runner.handle(&key, Input::Text(text), lang).await?;
                return self.send_turn(user, &turn).await;
            }
            // The owner answered the question they saw (see
            // `Input::TextUnder` and the Discord owner's `dm_inner`): the
            // question recorded as shown, and when the engine does not take
            // the text for the current question, the DM's history. With two
            // instances on Slack each takes some of an owner's messages, so
            // what one process recorded can be behind what the owner saw.
            let mut shown = self.recorded_before(&key, ts).await;
            let read_history = shown.is_none();
            if read_history {
                shown = self.history_before(&key, channel, ts).await;
            }
            let typed = |shown: Option<(i64, String)>| match shown {
                Some((session, node)) => Input::TextUnder {
                    text: text.clone(),
                    session,
                    node: Some(node),
                },
                None => Input::Text(text.clone()),
            };
            let mut turn = self.runner.handle(&key, typed(shown.clone()), lang).await?;
            if !read_history && turn.effects.iter().any(|e| matches!(e, Effect::Stale)) {
                let seen = self.history_before(&key, channel, ts).await;
                if seen.is_some() && seen != shown {
                    turn = self.runner.handle(&key, typed(seen), lang).await?;
                }
            }
            self.send_turn(user, &turn).await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(user, error = %e, "could not handle a direct message");
            let lang = self.lang_for(&key, None).await;
            let _ = self
                .post_message(&json!({ "channel": channel, "text": sorry_text(lang), "unfurl_links": false, "unfurl_media": false }))
                .await;
        }
    }

    /// The question recorded as shown last (by this process, or in the
    /// store), if it was posted before the message `ts`.
    async fn recorded_before(&self, key: &UserKey, ts: &str) -> Option<(i64, String)> {
        self.prompts
            .get(&self.store, key)
            .await
            .ok()
            .flatten()
            .filter(|p| ts_before(&p.message_id, ts))
            .map(|p| (p.session.0, p.node))
    }

    /// The question of the newest question message before `ts` in the
    /// DM, read back from its command buttons; `None` when none of the
    /// latest messages carries one (or Slack does not answer).
    async fn history_before(
        &self,
        key: &UserKey,
        channel: &str,
        ts: &str,
    ) -> Option<(i64, String)> {
        let params = [
            ("channel", channel.to_string()),
            ("latest", ts.to_string()),
            ("limit", "50".to_string()),
        ];
        let page = match self.api.get("conversations.history", &params).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the DM's history to tell which question a message answers");
                return None;
            }
        };
        let (session, ix) = page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m.get("bot_id").is_some_and(|b| !b.is_null()))
            .filter(|m| ts_before(m["ts"].as_str().unwrap_or_default(), ts))
            .filter_map(|m| Some((ts_key(m["ts"].as_str()?)?, render::question_of(m)?)))
            .max_by_key(|(t, _)| *t)?
            .1;
        let flow = self.session_flow(key, session).await?;
        let node = flow.nodes.get(ix as usize)?.id.clone();
        Some((session, node))
    }

    /// Sends a turn to the owner's DM: one message (the engine's text and
    /// the question's blocks), remembered as the live question.
    pub(crate) async fn send_turn(&self, user: &str, turn: &Turn) -> Result<(), OwnerError> {
        let Some(key) = user_key(user) else {
            return Ok(());
        };
        let msgs = render::turn_messages(&turn.effects, &turn.flow, turn.session.0);
        if turn.case.is_some() {
            self.wake.notify_one();
        }
        let finished = turn
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Finished(_)));
        let asks = msgs.iter().any(|m| m.question.is_some());
        if msgs.is_empty() {
            return Ok(());
        }
        let channel = self.dm_channel(user).await?;
        for m in msgs {
            let r = match self.post_message(&m.body(&channel)).await {
                Ok(r) => r,
                Err(e) => {
                    // The question may or may not have been posted: the
                    // owner's next message is judged from the store and
                    // the DM's history.
                    self.prompts.doubt(&key);
                    return Err(e.into());
                }
            };
            let ts = r["ts"].as_str().unwrap_or_default().to_string();
            if let Some(node) = m.question {
                self.prompts
                    .set_flow(&key, turn.session.0, turn.flow.clone());
                self.prompts.set(LivePrompt {
                    user: key.clone(),
                    session: turn.session,
                    node,
                    channel_id: channel.clone(),
                    message_id: ts,
                    data: Value::Array(m.blocks),
                    updated_at: self.runner.clock().now(),
                });
            }
        }
        if finished && !asks {
            self.prompts.clear(&key);
        }
        Ok(())
    }

    /// After a restart: an owner whose last question was never shown (the
    /// app stopped between saving the step and sending it) gets it again.
    pub(crate) async fn resume_consultations(&self) {
        let sessions = match self.store.open_sessions().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot list open consultations to resume");
                return;
            }
        };
        for s in sessions {
            if s.user.transport() != Transport::Slack || s.status == crate::engine::Status::New {
                continue;
            }
            let user = s.user.id().to_string();
            let lock = self.user_lock(&user);
            let _g = lock.lock().await;
            // The list was read before this owner's lock was taken: an
            // owner who wrote since (the app takes messages while this runs)
            // has moved on and seen their question, so the session is read
            // again under the lock and compared with what was shown.
            let s = match self.store.open_session(&s.user).await {
                Ok(Some(now)) if now.id == s.id => now,
                _ => continue,
            };
            let live = self.prompts.get(&self.store, &s.user).await.ok().flatten();
            if live
                .as_ref()
                .is_some_and(|l| l.session == s.id && l.node == s.current_node)
            {
                continue;
            }
            // Shown but not recorded (the app stopped between posting the
            // question and recording it): the owner has it and is not
            // asked twice; it becomes the live question.
            if let Some(p) = self.shown_unrecorded(&user, &s, live.as_ref()).await {
                tracing::info!(session = %s.id, "the current question was shown but not recorded; recording it");
                self.prompts.set(p);
                continue;
            }
            tracing::info!(session = %s.id, "resuming a consultation whose question was not shown");
            let r = match self.runner.handle(&s.user, Input::Resume, None).await {
                Ok(turn) => self.send_turn(&user, &turn).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = r {
                tracing::warn!(session = %s.id, error = %e, "could not resume a consultation");
            }
        }
    }

    /// After a start: the newest message in the owner's DM after the
    /// recorded question `after` that carries the current question of
    /// `session` (posted by an app that stopped before recording it), as
    /// the live prompt.
    async fn shown_unrecorded(
        &self,
        user: &str,
        session: &crate::store::SessionRecord,
        after: Option<&LivePrompt>,
    ) -> Option<LivePrompt> {
        let flow = self.runner.flow_for(&session.version).await.ok()?;
        let ix = flow.index_of(&session.current_node)?;
        let channel = self.dm_channel(user).await.ok()?;
        let mut params = vec![("channel", channel.clone()), ("limit", "50".to_string())];
        if let Some(p) = after {
            params.push(("oldest", p.message_id.clone()));
        }
        let page = match self.api.get("conversations.history", &params).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(session = %session.id, error = %e, "cannot read the DM's history to see whether the question was shown");
                return None;
            }
        };
        let (_, m) = page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m.get("bot_id").is_some_and(|b| !b.is_null()))
            .filter(|m| render::question_of(m) == Some((session.id.0, ix)))
            .filter_map(|m| Some((ts_key(m["ts"].as_str()?)?, m)))
            .max_by_key(|(t, _)| *t)?;
        self.prompts.set_flow(&session.user, session.id.0, flow);
        Some(LivePrompt {
            user: session.user.clone(),
            session: session.id,
            node: session.current_node.clone(),
            channel_id: channel,
            message_id: m["ts"].as_str()?.to_string(),
            data: m["blocks"].clone(),
            updated_at: self.runner.clock().now(),
        })
    }

    /// The live question if `ts` is its message and `session` its session.
    /// Whether a press or a form on message `ts`, under question `node`
    /// (an index) of `session`, answers the question the owner has in
    /// front of them.
    ///
    /// What this instance last showed decides at once. Otherwise the store
    /// does: with two instances (`madoguchi run` on two hosts), Socket Mode
    /// hands each envelope to one of the app's connections, so the current
    /// question may have been asked by the other instance, which this
    /// instance's memory does not know. The other instance's record of it
    /// may still be on its way to the store, so the session itself has the
    /// last word: a press under the question the session waits for counts,
    /// whichever message of that question it came from (the runner's
    /// revision check then keeps the step itself safe). A press under an
    /// earlier question, or whose question is not known (an id without its
    /// node), still gets the "earlier question" note.
    async fn is_current(&self, key: &UserKey, ts: &str, session: i64, node: u16) -> bool {
        let shows = |l: &LivePrompt| l.message_id == ts && l.session.0 == session;
        let known = self.prompts.get(&self.store, key).await.ok().flatten();
        if known.as_ref().is_some_and(shows) {
            return true;
        }
        // A stored record counts only if it is not older than what this
        // instance itself showed last (its own record may not be written
        // yet).
        if let Ok(Some(stored)) = self.store.live_prompt(key).await {
            if shows(&stored)
                && known
                    .as_ref()
                    .is_none_or(|k| k.updated_at <= stored.updated_at)
            {
                return true;
            }
        }
        let Ok(Some(s)) = self.store.session(SessionId(session)).await else {
            return false;
        };
        if &s.user != key {
            return false;
        }
        // The session just read names its script version: no second read.
        let flow = match self.prompts.flow_of(key, session) {
            Some(f) => f,
            None => match self.runner.flow_for(&s.version).await {
                Ok(f) => f,
                Err(_) => return false,
            },
        };
        flow.nodes
            .get(node as usize)
            .is_some_and(|n| n.id == s.current_node)
    }

    /// The flow of the owner's `session`: the one this instance used last,
    /// or the session's script version read from the store (the session
    /// was served by another instance, or before a restart).
    async fn session_flow(
        &self,
        key: &UserKey,
        session: i64,
    ) -> Option<std::sync::Arc<crate::script::Flow>> {
        if let Some(f) = self.prompts.flow_of(key, session) {
            return Some(f);
        }
        let s = self
            .store
            .session(SessionId(session))
            .await
            .ok()
            .flatten()?;
        if &s.user != key {
            return None;
        }
        self.runner.flow_for(&s.version).await.ok()
    }

    async fn session_lang(&self, key: &UserKey, session: i64) -> Lang {
        if let Some(f) = self.prompts.flow_of(key, session) {
            return f.lang;
        }
        match self.store.session(SessionId(session)).await {
            Ok(Some(s)) if &s.user == key => s.lang,
            _ => self.lang_for(key, None).await,
        }
    }

    /// A press or a menu choice on an owner's message.
    pub(crate) async fn on_action(&self, a: Action) {
        if let Some(rest) = a.action_id.strip_prefix("g:") {
            return self.on_forget_press(&a, rest).await;
        }
        let Some(oid) = render::owner_id(&a.action_id) else {
            tracing::debug!(action = %a.action_id, "not an owner action");
            return;
        };
        let Some(key) = user_key(&a.user) else { return };
        if !a.channel.is_empty() {
            self.remember_dm(&a.user, &a.channel);
        }
        match oid.kind {
            // Ticking a box is not an answer yet: "done" reads the state
            // (or what `Bot::dispatch` remembered of the ticks).
            'x' => return,
            'm' => return self.open_form(&a, &oid, &key).await,
            _ => {}
        }
        let lock = self.user_lock(&a.user);
        let _g = lock.lock().await;
        let lang = self.session_lang(&key, oid.session).await;
        if !self
            .is_current(&key, &a.message_ts, oid.session, oid.node)
            .await
        {
            return self.ephemeral(&a.channel, &a.user, &stale_text(lang)).await;
        }
        let flow = match self.prompts.flow_of(&key, oid.session) {
            Some(f) => f,
            None => match self.store.session(SessionId(oid.session)).await {
                Ok(Some(s)) => match self.runner.flow_for(&s.version).await {
                    Ok(f) => f,
                    Err(_) => return self.ephemeral(&a.channel, &a.user, &sorry_text(lang)).await,
                },
                _ => return self.ephemeral(&a.channel, &a.user, &stale_text(lang)).await,
            },
        };
        let input = match oid.kind {
            'c' => match oid.arg.as_deref().and_then(Command::parse_name) {
                Some(c) => Input::Command(c),
                None => return,
            },
            _ if oid.node as usize >= flow.nodes.len() => {
                return self.ephemeral(&a.channel, &a.user, &stale_text(lang)).await
            }
            'd' => {
                let mut values = checked(&a.state, &render::multi_id(oid.session, oid.node));
                let remembered = self
                    .ticks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(a.user.clone(), oid.session, oid.node));
                if values.is_empty() {
                    values = remembered.unwrap_or_default();
                }
                Input::Pick {
                    node: flow.node(oid.node).id.clone(),
                    value: values.join(","),
                }
            }
            'q' => {
                let node = flow.node(oid.node);
                let value = match oid.option() {
                    Some(o) => match o.strip_prefix('#').and_then(|i| i.parse::<usize>().ok()) {
                        Some(i) => match &node.kind {
                            NodeKind::Ask(q) => {
                                q.ty.options()
                                    .get(i)
                                    .map(|o| o.id.clone())
                                    .unwrap_or_default()
                            }
                            _ => String::new(),
                        },
                        None => o.to_string(),
                    },
                    None => a.values.join(","),
                };
                Input::Pick {
                    node: node.id.clone(),
                    value,
                }
            }
            _ => return,
        };
        self.answer(&a.user, &a.channel, lang, input).await;
    }

    /// Runs a step from a press or a form and sends the next turn.
    async fn answer(&self, user: &str, channel: &str, lang: Lang, input: Input) {
        let Some(key) = user_key(user) else { return };
        let r: Result<(), OwnerError> = async {
            let turn = self.runner.handle(&key, input, None).await?;
            if turn.effects.iter().any(|e| matches!(e, Effect::Stale)) {
                self.ephemeral(channel, user, &stale_text(lang)).await;
                let again = self.runner.handle(&key, Input::Resume, None).await?;
                return self.send_turn(user, &again).await;
            }
            self.send_turn(user, &turn).await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(user, error = %e, "could not handle a press");
            self.ephemeral(channel, user, &sorry_text(lang)).await;
        }
    }

    /// "Answer in a form": opens the modal at once (the trigger expires
    /// after 3 seconds); the submission is checked against the live
    /// question like a press.
    async fn open_form(&self, a: &Action, oid: &OwnerId, key: &UserKey) {
        let Some(flow) = self.session_flow(key, oid.session).await else {
            let lang = self.session_lang(key, oid.session).await;
            return self.ephemeral(&a.channel, &a.user, &stale_text(lang)).await;
        };
        if oid.node as usize >= flow.nodes.len() {
            return;
        }
        let node = flow.node(oid.node);
        let max = match &node.kind {
            NodeKind::Ask(q) => match &q.ty {
                AnswerType::Text { max, .. } => *max,
                _ => render::MAX_MODAL_INPUT,
            },
            _ => render::MAX_MODAL_INPUT,
        };
        let meta = format!("{}|{}", a.channel, a.message_ts);
        let view = render::answer_modal(oid.session, oid.node, &node.label, max, flow.lang, &meta);
        let body = json!({ "trigger_id": a.trigger_id, "view": view });
        if let Err(e) = self.api.post("views.open", &body).await {
            tracing::warn!(user = %a.user, error = %e, "could not open the answer form");
        }
    }

    /// A long answer written in the form.
    pub(crate) async fn on_view_submit(&self, v: ViewSubmit) {
        let Some(oid) = render::owner_id(&v.callback_id).filter(|o| o.kind == 't') else {
            return;
        };
        let Some(key) = user_key(&v.user) else { return };
        let (channel, ts) = v.metadata.split_once('|').unwrap_or_default();
        let lock = self.user_lock(&v.user);
        let _g = lock.lock().await;
        let lang = self.session_lang(&key, oid.session).await;
        if !self.is_current(&key, ts, oid.session, oid.node).await {
            return self.ephemeral(channel, &v.user, &stale_text(lang)).await;
        }
        let Some(flow) = self.session_flow(&key, oid.session).await else {
            return self.ephemeral(channel, &v.user, &stale_text(lang)).await;
        };
        if oid.node as usize >= flow.nodes.len() {
            return;
        }
        let input = Input::Pick {
            node: flow.node(oid.node).id.clone(),
            value: v.answer,
        };
        self.answer(&v.user, channel, lang, input).await;
    }

    /// What a slash command's acknowledgement says (sent at once, before
    /// the work).
    pub(crate) async fn command_ack(&self, e: &super::events::Event) -> String {
        let super::events::Event::Command(c) = e else {
            return String::new();
        };
        let Some(key) = user_key(&c.user) else {
            return String::new();
        };
        let lang = self.lang_for(&key, Lang::parse(&c.text)).await;
        match c.command.as_str() {
            "/consult" if c.channel.starts_with('D') => t(lang, "このDMで質問をお送りします。", "The questions follow in this DM."),
            "/consult" => t(
                lang,
                "ご相談はアプリとのDM（ダイレクトメッセージ）でお受けします。サイドバーの「アプリ」からmadoguchiを開いてください。",
                "The consultation continues in your direct messages with the app (Apps → madoguchi in the sidebar).",
            ),
            "/forget" if c.channel.starts_with('D') => t(lang, "このDMで確認をお送りします。", "Please confirm in this DM."),
            "/forget" => t(
                lang,
                "確認のメッセージをアプリとのDMにお送りします（サイドバーの「アプリ」→ madoguchi）。",
                "Please confirm in your direct messages with the app (Apps → madoguchi in the sidebar).",
            ),
            super::admin::COMMAND => self.admin_ack(c, lang).await,
            // Staff's command: the desk's answer follows (privately).
            "/madoguchi" => t(lang, "受け付けました。", "Received."),
            _ => t(lang, "このコマンドは準備中です。", "This command is not available yet."),
        }
    }

    /// `/consult [ja|en]`: starts a consultation, or shows the current
    /// question again, in the owner's DM.
    pub(crate) async fn on_command(&self, c: SlashCommand) {
        match c.command.as_str() {
            "/consult" => {}
            "/forget" => return self.on_forget_command(&c.user, &c.channel).await,
            super::admin::COMMAND => return self.on_admin_command(c).await,
            _ => return,
        }
        let Some(key) = user_key(&c.user) else { return };
        let explicit = Lang::parse(&c.text);
        let lang = self.lang_for(&key, explicit).await;
        let lock = self.user_lock(&c.user);
        let _g = lock.lock().await;
        let r: Result<(), OwnerError> = async {
            let open = self.store.open_session(&key).await?;
            let input = match &open {
                Some(s) if explicit.is_some_and(|l| l != s.lang) => {
                    // A switch of language starts over in the other script.
                    self.runner
                        .handle(&key, Input::Command(Command::Cancel), None)
                        .await?;
                    Input::Start
                }
                Some(_) => Input::Resume,
                None => Input::Start,
            };
            let turn = self.runner.handle(&key, input, Some(lang)).await?;
            self.send_turn(&c.user, &turn).await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(user = %c.user, error = %e, "could not start a consultation");
            if !c.channel.is_empty() {
                self.ephemeral(&c.channel, &c.user, &sorry_text(lang)).await;
            }
        }
    }
}

/// A Slack ts ("1700000000.000100") as a number that orders like it.
fn ts_key(ts: &str) -> Option<(u64, u64)> {
    let (secs, micros) = ts.split_once('.')?;
    Some((secs.parse().ok()?, micros.parse().ok()?))
}

/// Whether message `a` was posted before message `b` in a channel.
fn ts_before(a: &str, b: &str) -> bool {
    matches!((ts_key(a), ts_key(b)), (Some(a), Some(b)) if a < b)
}
