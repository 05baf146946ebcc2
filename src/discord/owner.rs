//! The owner's side: a consultation by DM, started with `/consult` or by
//! simply writing to the bot; answers by button, select, form or text;
//! `/forget`.
//!
//! Each turn is one DM: what the engine says and the next question
//! together, sent with one REST call — a typed answer gets a new message,
//! a press or form gets the next question as the interaction's own reply
//! (callback type 4, `?with_response=true` to learn the message id). The
//! message carrying the current question is remembered ([`LivePrompt`]);
//! a press on any other message gets a polite ephemeral note, and that old
//! message's components are disabled then. Old questions are not edited
//! at every turn: that doubled the calls per turn, and with Discord's
//! rate limits (50 requests/s per bot) the bot's capacity.

use super::render::{self, t, OwnerId};
use super::{code_of, user_key, Bot, BotError};
use crate::domain::ids::{SessionId, UserKey};
use crate::domain::text::fold_for_match;
use crate::engine::{Effect, Input};
use crate::privacy::forget_texts;
use crate::runner::Turn;
use crate::script::{AnswerType, Command, Flow, Lang, NodeKind};
use crate::store::{CasePost, CaseRecord, CaseStatus, LivePrompt, SessionRecord};
use serde_json::{json, Value};
use serenity::all::{
    ActionRowComponent, ChannelId, CommandInteraction, ComponentInteraction,
    ComponentInteractionDataKind, InteractionId, Message, MessageId, ModalInteraction, UserId,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// An interaction whose reply is still owed: the turn's message goes out
/// as that reply.
#[derive(Clone, Copy)]
pub(crate) struct ReplyTo<'a> {
    pub(crate) id: InteractionId,
    pub(crate) token: &'a str,
}

/// One press (or form submission) being answered.
struct Press<'a> {
    id: InteractionId,
    token: &'a str,
    /// Already acknowledged (deferred) because the turn lock took long.
    acked: bool,
    user: UserId,
    lang: Lang,
}

const EPHEMERAL: u64 = 64;

/// How many of the DM's latest messages are read to find the question an
/// owner saw (a turn is one message, more only for very long text).
const HISTORY: u8 = 50;

/// The engine did not take a typed message for the current question.
fn refused(turn: &Turn) -> bool {
    turn.effects.iter().any(|e| matches!(e, Effect::Stale))
}

/// The session and node index of the question a message carried.
fn message_question(m: &Message) -> Option<(i64, u16)> {
    let rows = serde_json::to_value(&m.components).ok()?;
    render::question_of(rows.as_array()?)
}

pub(crate) fn stale_text(lang: Lang) -> String {
    t(
        lang,
        "このボタンは前の質問のものです。いちばん新しいメッセージの質問にお答えください。",
        "That button belongs to an earlier question. Please answer the latest message.",
    )
}

pub(crate) fn sorry_text(lang: Lang) -> String {
    t(
        lang,
        "申し訳ありません、うまく処理できませんでした。少し待ってから、もう一度お試しください。ここまでの回答は保存されています。",
        "Sorry, something went wrong. Please try again in a moment; your answers so far are saved.",
    )
}

impl Bot {
    /// A direct message from an owner: an answer while a consultation is
    /// open; after routing, a message for the hub's staff; otherwise the
    /// start of a new consultation.
    pub(crate) async fn on_dm(&self, msg: &Message) {
        let user = msg.author.id;
        self.remember_dm(user, msg.channel_id);
        let key = user_key(user);
        let lock = self.user_lock(user);
        let _g = lock.lock().await;
        if let Err(e) = self.dm_inner(msg, &key).await {
            tracing::warn!(user = %user, message = %msg.id, error = %e, "could not handle a direct message");
            let lang = self.lang_for(&key, None, None).await;
            let _ = self
                .send(msg.channel_id, json!({ "content": sorry_text(lang) }))
                .await;
        }
    }

    async fn dm_inner(&self, msg: &Message, key: &UserKey) -> Result<(), BotError> {
        // The owner's own words for `/forget` are not an answer: they get
        // the same confirmation in the DM (nothing is deleted without it).
        if crate::privacy::is_forget_request(&msg.content) {
            let lang = self.lang_for(key, None, None).await;
            let user = msg.author.id;
            let body = json!({
                "content": forget_texts::confirm(lang),
                "components": forget_buttons(user, lang),
            });
            self.send(msg.channel_id, body).await?;
            return Ok(());
        }
        let open = self.runner.has_open_session(key).await?;
        if !open {
            self.retell_unshown_ending(msg.author.id, key).await?;
        }
        let text = msg.content.clone();
        if !open && !self.is_restart_word(&text) {
            if let Some((case, post)) = self.active_case(key).await? {
                return self.owner_to_staff(msg, &case, post.as_ref()).await;
            }
        }
        let lang = if open {
            None
        } else {
            Some(self.lang_for(key, None, None).await)
        };
        if !open {
            let turn = self.runner.handle(key, Input::Text(text), lang).await?;
            return self.send_turn(msg.author.id, &turn, None).await;
        }
        // The owner answered the question they saw: the newest question
        // message before theirs, which is not always the current one (see
        // `Input::TextUnder`). The record of the question shown last is
        // what this process sent, or the store's; it can be behind what
        // the owner saw (the instance before died between sending a
        // question and recording it; a send failed after Discord posted
        // it), so when the engine does not take the text for the current
        // question the DM's history decides.
        let mut shown = self.recorded_before(msg, key).await;
        let read_history = shown.is_none();
        if read_history {
            shown = self.history_before(msg, key).await;
        }
        let typed = |shown: Option<(i64, String)>| match shown {
            Some((session, node)) => Input::TextUnder {
                text: text.clone(),
                session,
                node: Some(node),
            },
            None => Input::Text(text.clone()),
        };
        let mut turn = self.runner.handle(key, typed(shown.clone()), lang).await?;
        if refused(&turn) && !read_history {
            let seen = self.history_before(msg, key).await;
            if seen.is_some() && seen != shown {
                turn = self.runner.handle(key, typed(seen), lang).await?;
            }
        }
        self.send_turn(msg.author.id, &turn, None).await
    }

    /// The question this process last sent the owner, or else the store's
    /// record of it, if it was posted before `msg`.
    async fn recorded_before(&self, msg: &Message, key: &UserKey) -> Option<(i64, String)> {
        self.prompts
            .get(&self.store, key)
            .await
            .ok()
            .flatten()
            .filter(|p| p.message_id.parse::<u64>().is_ok_and(|m| m < msg.id.get()))
            .map(|p| (p.session.0, p.node))
    }

    /// The question of the newest question message before `msg` in the
    /// DM, read back from its command buttons; `None` when none of the
    /// latest messages carries one (or Discord does not answer).
    async fn history_before(&self, msg: &Message, key: &UserKey) -> Option<(i64, String)> {
        let page = match self
            .http
            .get_messages(
                msg.channel_id,
                Some(serenity::all::MessagePagination::Before(msg.id)),
                Some(HISTORY),
            )
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(user = %msg.author.id, error = %e, "cannot read the DM's history to tell which question a message answers");
                return None;
            }
        };
        let (session, ix) = page
            .iter()
            .filter(|m| m.author.bot)
            .filter_map(|m| Some((m.id, message_question(m)?)))
            .max_by_key(|(id, _)| *id)?
            .1;
        let (flow, _) = self.session_flow(session, "", key).await;
        let node = flow.ok().flatten()?.nodes.get(ix as usize)?.id.clone();
        Some((session, node))
    }

    /// After a start: the newest question message in the owner's DM after
    /// `after` that carries the current question of `session` (sent by an
    /// instance that died before recording it), as the live prompt.
    async fn shown_unrecorded(
        &self,
        user: UserId,
        session: &SessionRecord,
        after: Option<&LivePrompt>,
    ) -> Option<LivePrompt> {
        let flow = self.runner.flow_for(&session.version).await.ok()?;
        let ix = flow.index_of(&session.current_node)?;
        let channel = self.dm_channel(user).await.ok()?;
        let after = after
            .and_then(|p| p.message_id.parse::<u64>().ok())
            .map(|m| serenity::all::MessagePagination::After(MessageId::new(m)));
        let page = match self.http.get_messages(channel, after, Some(HISTORY)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(session = %session.id, error = %e, "cannot read the DM's history to see whether the question was shown");
                return None;
            }
        };
        let m = page
            .iter()
            .filter(|m| m.author.bot && message_question(m) == Some((session.id.0, ix)))
            .max_by_key(|m| m.id)?;
        self.prompts.set_flow(&session.user, session.id.0, flow);
        Some(LivePrompt {
            user: session.user.clone(),
            session: session.id,
            node: session.current_node.clone(),
            channel_id: channel.to_string(),
            message_id: m.id.to_string(),
            data: serde_json::to_value(&m.components).unwrap_or(Value::Null),
            updated_at: self.runner.clock().now(),
        })
    }

    fn is_restart_word(&self, text: &str) -> bool {
        let b = self.runner.bundle();
        let folded = fold_for_match(text);
        b.flows.first().and_then(|f| f.commands.recognize(&folded)) == Some(Command::Restart)
    }

    /// The owner's latest case that is still being worked, with its post in
    /// the responsible hub's channel (none yet while it is being delivered).
    pub(crate) async fn active_case(
        &self,
        key: &UserKey,
    ) -> Result<Option<(CaseRecord, Option<CasePost>)>, BotError> {
        let cases = self.store.cases_of_user(key).await?;
        let Some(case) = cases
            .into_iter()
            .rev()
            .find(|c| c.status != CaseStatus::Closed)
        else {
            return Ok(None);
        };
        let post = self.store.case_posts(case.id).await?.into_iter().find(|p| {
            p.hub_id == case.hub_id && crate::relay::TRANSPORTS.contains(&p.transport.as_str())
        });
        Ok(Some((case, post)))
    }

    /// Sends a turn to the owner's DM: one message (more only for text over
    /// 2,000 characters), with the question's components on the last. With
    /// `reply`, the first message is that interaction's reply (one call for
    /// the acknowledgement and the message); if the turn has nothing to say
    /// the interaction is still acknowledged. The previous question is left
    /// as it is: a press on it gets the stale note.
    pub(crate) async fn send_turn(
        &self,
        user: UserId,
        turn: &Turn,
        mut reply: Option<ReplyTo<'_>>,
    ) -> Result<(), BotError> {
        let key = user_key(user);
        let msgs = render::turn_messages(&turn.effects, &turn.flow, turn.session.0);
        for e in &turn.effects {
            if let Effect::Fault(f) = e {
                self.post_admin(crate::admin::template_fault_text(&turn.flow, f))
                    .await;
            }
        }
        if turn.case.is_some() {
            self.wake.notify_one();
        }
        let finished = turn
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Finished(_)));
        let asks = msgs.iter().any(|m| m.question.is_some());
        if msgs.is_empty() {
            if let Some(r) = reply {
                self.respond(r.id, r.token, json!({ "type": 6 })).await?;
            }
            return Ok(());
        }
        let mut dm = None;
        for m in msgs {
            let mut body = json!({ "content": m.content });
            if !m.components.is_empty() {
                body["components"] = Value::Array(m.components.clone());
            }
            let mut sent = None;
            if let Some(r) = reply.take() {
                match self.reply_with_message(r.id, r.token, body.clone()).await {
                    Ok(id) => sent = Some(id),
                    // The reply may or may not have been shown; the message
                    // is sent to the DM as well so the owner surely has it.
                    Err(e) => {
                        tracing::warn!(interaction = %r.id, error = %e, "could not answer with the next question; sending it as a message")
                    }
                }
            }
            let (channel, sent) = match sent {
                Some(id) => (self.dm_channel(user).await?, id),
                None => {
                    let c = match dm {
                        Some(c) => c,
                        None => *dm.insert(self.dm_channel(user).await?),
                    };
                    match self.send(c, body).await {
                        Ok(m) => (c, m.id),
                        Err(e) => {
                            self.prompts.doubt(&key);
                            return Err(e.into());
                        }
                    }
                }
            };
            if let Some(node) = m.question {
                self.prompts
                    .set_flow(&key, turn.session.0, turn.flow.clone());
                self.prompts.set(LivePrompt {
                    user: key.clone(),
                    session: turn.session,
                    node,
                    channel_id: channel.to_string(),
                    message_id: sent.to_string(),
                    data: Value::Array(m.components),
                    updated_at: self.runner.clock().now(),
                });
            }
        }
        if finished && !asks {
            self.prompts.clear(&key);
        }
        Ok(())
    }

    /// Disables the components of a question message (best effort: a
    /// failure leaves old buttons that still only get a stale note).
    pub(crate) async fn disable_prompt(&self, p: &LivePrompt) {
        let (Ok(c), Ok(m)) = (p.channel_id.parse::<u64>(), p.message_id.parse::<u64>()) else {
            return;
        };
        let body = json!({ "components": render::disabled(&p.data, None) });
        if let Err(e) = self.edit(ChannelId::new(c), MessageId::new(m), body).await {
            tracing::warn!(message = %p.message_id, error = %e, "could not disable an old question's buttons");
        }
    }

    /// After a restart: an owner whose last question was never shown (the
    /// bot stopped between saving the step and sending it) is sent their
    /// current question again. Others simply continue with their next
    /// answer; their question message still works.
    pub(crate) async fn resume_consultations(&self) {
        let sessions = match self.store.open_sessions().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot list open consultations to resume");
                return;
            }
        };
        for s in sessions {
            if s.user.transport() != crate::domain::ids::Transport::Discord
                || s.status == crate::engine::Status::New
            {
                continue;
            }
            let Ok(uid) = s.user.id().parse::<u64>() else {
                continue;
            };
            let user = UserId::new(uid);
            let lock = self.user_lock(user);
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
            // Shown but not recorded (the instance before died between
            // sending the question and recording it): the owner has it and
            // is not asked twice; it becomes the live question.
            if let Some(p) = self.shown_unrecorded(user, &s, live.as_ref()).await {
                tracing::info!(session = %s.id, "the current question was shown but not recorded; recording it");
                self.prompts.set(p);
                continue;
            }
            tracing::info!(session = %s.id, "resuming a consultation whose question was not shown");
            let r = match self.runner.handle(&s.user, Input::Resume, None).await {
                Ok(turn) => self.send_turn(user, &turn, None).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = r {
                tracing::warn!(session = %s.id, error = %e, "could not resume a consultation");
            }
        }
        // Consultations that ended without the end recorded as shown.
        let ended = match self.store.live_prompts_of_ended_sessions().await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the consultations that ended unseen");
                return;
            }
        };
        for (key, _) in ended {
            if key.transport() != crate::domain::ids::Transport::Discord {
                continue;
            }
            let Ok(uid) = key.id().parse::<u64>() else {
                continue;
            };
            let user = UserId::new(uid);
            let lock = self.user_lock(user);
            let _g = lock.lock().await;
            if let Err(e) = self.retell_unshown_ending(user, &key).await {
                tracing::warn!(user = %user, error = %e, "could not tell the end of a consultation");
            }
        }
    }

    /// An owner whose consultation has ended while the recorded current
    /// question still belongs to it was perhaps never told the end: the bot
    /// stopped (or the leader died) between committing the last step and
    /// sending its reply, and Discord does not hand the lost event to the
    /// next connection. The end is told again (the owner may see it twice;
    /// that is better than silence after "送信"). The caller holds the
    /// owner's turn lock. Returns whether it was told.
    pub(crate) async fn retell_unshown_ending(
        &self,
        user: UserId,
        key: &UserKey,
    ) -> Result<bool, BotError> {
        let Some(live) = self.prompts.get(&self.store, key).await? else {
            return Ok(false);
        };
        let Some(turn) = self.runner.ending(key, live.session).await? else {
            return Ok(false);
        };
        tracing::info!(session = %live.session, "telling the end of a consultation that was not recorded as shown");
        self.send_turn(user, &turn, None).await?;
        Ok(true)
    }

    /// Is `message` the message carrying the owner's current question of
    /// `session`?
    async fn is_live(
        &self,
        key: &UserKey,
        message: MessageId,
        session: i64,
    ) -> Result<Option<LivePrompt>, BotError> {
        Ok(self
            .prompts
            .get(&self.store, key)
            .await?
            .filter(|l| l.message_id == message.to_string() && l.session.0 == session))
    }

    /// Waits for the owner's turn lock, so a press is judged only after a
    /// turn in progress has recorded its question. Discord wants an answer
    /// within 3 s: when the wait is long the press is acknowledged first
    /// (deferred), and what follows goes out as edits and followups.
    async fn press_lock(
        &self,
        user: UserId,
        id: InteractionId,
        token: &str,
    ) -> (OwnedMutexGuard<()>, bool) {
        let lock = self.user_lock(user);
        match tokio::time::timeout(Duration::from_millis(1500), lock.clone().lock_owned()).await {
            Ok(g) => (g, false),
            Err(_) => {
                let acked = self.respond(id, token, json!({ "type": 6 })).await.is_ok();
                (lock.lock_owned().await, acked)
            }
        }
    }

    async fn stale_reply(&self, id: InteractionId, token: &str, acked: bool, lang: Lang) {
        if acked {
            self.followup_ephemeral(token, &stale_text(lang)).await;
        } else {
            self.respond_ephemeral(id, token, &stale_text(lang)).await;
        }
    }

    /// The flow a press on `session` is judged with, and the language for
    /// answers: from the owner's last turn when it is that session, else
    /// read from the store. `Err` when the session's script version cannot
    /// be loaded.
    async fn session_flow(
        &self,
        session: i64,
        locale: &str,
        key: &UserKey,
    ) -> (Result<Option<Arc<Flow>>, ()>, Lang) {
        if let Some(f) = self.prompts.flow_of(key, session) {
            let lang = f.lang;
            return (Ok(Some(f)), lang);
        }
        let (s, lang) = self.session_lang(session, locale, key).await;
        let Some(s) = s else {
            return (Ok(None), lang);
        };
        match self.runner.flow_for(&s.version).await {
            Ok(f) => (Ok(Some(f)), lang),
            Err(e) => {
                tracing::error!(session = %s.id, error = %e, "cannot load the session's script version");
                (Err(()), lang)
            }
        }
    }

    async fn session_lang(
        &self,
        session: i64,
        locale: &str,
        key: &UserKey,
    ) -> (Option<SessionRecord>, Lang) {
        let s = self
            .store
            .session(SessionId(session))
            .await
            .ok()
            .flatten()
            .filter(|s| &s.user == key);
        let lang = match &s {
            Some(s) => s.lang,
            None => self.lang_for(key, None, Some(locale)).await,
        };
        (s, lang)
    }

    /// A press on a question's button or select, or on a command button.
    pub(crate) async fn on_owner_component(&self, comp: &ComponentInteraction, oid: OwnerId) {
        let user = comp.user.id;
        let key = user_key(user);
        self.remember_dm(user, comp.channel_id);
        let (flow, lang) = self.session_flow(oid.session, &comp.locale, &key).await;
        if oid.kind == 'm' {
            // A form must be the first answer to the press, so no deferring:
            // wait briefly for a turn in progress, then decide. The
            // submitted form is checked again.
            let lock = self.user_lock(user);
            let guard = tokio::time::timeout(Duration::from_millis(1500), lock.lock_owned())
                .await
                .ok();
            let live = self
                .is_live(&key, comp.message.id, oid.session)
                .await
                .ok()
                .flatten();
            drop(guard);
            return match (live, flow) {
                (Some(_), Ok(Some(f))) => self.open_form(comp, &oid, &f, lang).await,
                (Some(_), Err(())) => {
                    self.respond_ephemeral(comp.id, &comp.token, &sorry_text(lang))
                        .await
                }
                _ => self.stale_press(comp, false, lang).await,
            };
        }
        let (guard, acked) = self.press_lock(user, comp.id, &comp.token).await;
        let live = match self.is_live(&key, comp.message.id, oid.session).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(user = %user, error = %e, "could not check a press");
                return self
                    .respond_ephemeral(comp.id, &comp.token, &sorry_text(lang))
                    .await;
            }
        };
        let (Some(live), Ok(Some(flow))) = (&live, &flow) else {
            if flow.is_err() {
                return self
                    .respond_ephemeral(comp.id, &comp.token, &sorry_text(lang))
                    .await;
            }
            return self.stale_press(comp, acked, lang).await;
        };
        let (live, flow) = (live.clone(), flow.clone());
        let values = match &comp.data.kind {
            ComponentInteractionDataKind::StringSelect { values } => values.clone(),
            _ => vec![],
        };
        let node_ok = (oid.node as usize) < flow.nodes.len();
        match oid.kind {
            'p' if node_ok => {
                // A region was chosen: show its prefectures; no step yet.
                let Some(region) = values.first().and_then(|v| render::region_from_key(v)) else {
                    return;
                };
                let rows =
                    render::with_prefectures(&live.data, region, oid.session, oid.node, lang);
                let shown = if acked {
                    self.edit(
                        comp.channel_id,
                        comp.message.id,
                        json!({ "components": rows.clone() }),
                    )
                    .await
                    .map(|_| ())
                } else {
                    self.respond(
                        comp.id,
                        &comp.token,
                        json!({ "type": 7, "data": { "components": rows.clone() } }),
                    )
                    .await
                };
                match shown {
                    Ok(()) => self.prompts.set(LivePrompt { data: rows, ..live }),
                    Err(e) => tracing::warn!(error = %e, "could not show the prefectures"),
                }
                drop(guard);
            }
            'q' | 'c' => {
                let input = match oid.kind {
                    'c' => match oid.arg.as_deref().and_then(Command::parse_name) {
                        Some(c) => Input::Command(c),
                        None => return self.stale_press(comp, acked, lang).await,
                    },
                    _ if !node_ok => return self.stale_press(comp, acked, lang).await,
                    _ => {
                        let node = flow.node(oid.node);
                        let value = match oid.option() {
                            Some(o) => {
                                match o.strip_prefix('#').and_then(|i| i.parse::<usize>().ok()) {
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
                                }
                            }
                            None => values.join(","),
                        };
                        Input::Pick {
                            node: node.id.clone(),
                            value,
                        }
                    }
                };
                let press = Press {
                    id: comp.id,
                    token: &comp.token,
                    acked,
                    user,
                    lang,
                };
                drop(live);
                self.answer_press(&press, input, guard).await;
            }
            _ => self.stale_press(comp, acked, lang).await,
        }
    }

    /// A press on anything but the current question: a polite ephemeral
    /// note, and the old message is disabled so it cannot happen again.
    async fn stale_press(&self, comp: &ComponentInteraction, acked: bool, lang: Lang) {
        tracing::debug!(user = %comp.user.id, message = %comp.message.id, "stale press");
        self.stale_reply(comp.id, &comp.token, acked, lang).await;
        let rows = serde_json::to_value(&comp.message.components).unwrap_or(Value::Array(vec![]));
        if let Err(e) = self
            .edit(
                comp.channel_id,
                comp.message.id,
                json!({ "components": render::disabled(&rows, None) }),
            )
            .await
        {
            tracing::debug!(error = %e, "could not disable an old question");
        }
    }

    /// Opens the form for a long text answer.
    async fn open_form(&self, comp: &ComponentInteraction, oid: &OwnerId, flow: &Flow, lang: Lang) {
        if oid.node as usize >= flow.nodes.len() {
            return self.stale_press(comp, false, lang).await;
        }
        let node = flow.node(oid.node);
        let max = match &node.kind {
            NodeKind::Ask(q) => match &q.ty {
                AnswerType::Text { max, .. } => (*max).min(render::MAX_MODAL_INPUT),
                _ => render::MAX_MODAL_INPUT,
            },
            _ => render::MAX_MODAL_INPUT,
        };
        let body = json!({
            "type": 9,
            "data": {
                "custom_id": render::modal_id(oid.session, oid.node),
                "title": t(lang, "回答の入力", "Your answer"),
                "components": [render::row(vec![json!({
                    "type": 4,
                    "custom_id": "answer",
                    "style": 2,
                    "label": render::truncate(&node.label, render::MAX_MODAL_LABEL),
                    "min_length": 1,
                    "max_length": max.max(1),
                    "required": true,
                })])],
            }
        });
        if let Err(e) = self.respond(comp.id, &comp.token, body).await {
            tracing::warn!(error = %e, "could not open the answer form");
        }
    }

    /// Runs the step and answers the press with the next turn (the next
    /// question as the interaction's reply). The caller holds the owner's
    /// turn lock (`_guard`). A press acknowledged earlier (deferred) gets its
    /// turn as a new message.
    async fn answer_press(&self, p: &Press<'_>, input: Input, _guard: OwnedMutexGuard<()>) {
        let key = user_key(p.user);
        let reply = (!p.acked).then_some(ReplyTo {
            id: p.id,
            token: p.token,
        });
        let mut answered = false;
        let r = async {
            let turn = self.runner.handle(&key, input, None).await?;
            if turn.effects.iter().any(|e| matches!(e, Effect::Stale)) {
                // The engine had moved on: say so, and show the current
                // question again.
                match reply {
                    Some(r) => {
                        self.respond_ephemeral(r.id, r.token, &stale_text(p.lang))
                            .await
                    }
                    None => self.followup_ephemeral(p.token, &stale_text(p.lang)).await,
                }
                answered = true;
                let again = self.runner.handle(&key, Input::Resume, None).await?;
                return self.send_turn(p.user, &again, None).await;
            }
            answered = reply.is_some();
            self.send_turn(p.user, &turn, reply).await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(user = %p.user, error = %e, "could not handle a press");
            match reply {
                Some(r) if !answered => {
                    self.respond_ephemeral(r.id, r.token, &sorry_text(p.lang))
                        .await
                }
                _ => self.followup_ephemeral(p.token, &sorry_text(p.lang)).await,
            }
        }
    }

    /// A long answer written in the form.
    pub(crate) async fn on_owner_modal(&self, m: &ModalInteraction, oid: OwnerId) {
        let user = m.user.id;
        let key = user_key(user);
        let (flow, lang) = self.session_flow(oid.session, &m.locale, &key).await;
        let value = m
            .data
            .components
            .iter()
            .flat_map(|r| r.components.iter())
            .find_map(|c| match c {
                ActionRowComponent::InputText(i) if i.custom_id == "answer" => i.value.clone(),
                _ => None,
            })
            .unwrap_or_default();
        let Some(message) = m.message.as_ref().map(|m| m.id) else {
            return self
                .respond_ephemeral(m.id, &m.token, &stale_text(lang))
                .await;
        };
        let (guard, acked) = self.press_lock(user, m.id, &m.token).await;
        let live = self
            .is_live(&key, message, oid.session)
            .await
            .ok()
            .flatten();
        let flow = match (live, flow) {
            (Some(_), Ok(Some(f))) => f,
            (Some(_), Err(())) => {
                return self
                    .respond_ephemeral(m.id, &m.token, &sorry_text(lang))
                    .await
            }
            _ => return self.stale_reply(m.id, &m.token, acked, lang).await,
        };
        if oid.node as usize >= flow.nodes.len() {
            return self.stale_reply(m.id, &m.token, acked, lang).await;
        }
        let input = Input::Pick {
            node: flow.node(oid.node).id.clone(),
            value,
        };
        let press = Press {
            id: m.id,
            token: &m.token,
            acked,
            user,
            lang,
        };
        self.answer_press(&press, input, guard).await;
    }

    /// `/consult [lang]`: starts a consultation, or shows the current
    /// question again, in the owner's DM.
    pub(crate) async fn on_consult(&self, cmd: &CommandInteraction) {
        let user = cmd.user.id;
        let key = user_key(user);
        let explicit = cmd
            .data
            .options
            .iter()
            .find(|o| o.name == "lang")
            .and_then(|o| o.value.as_str())
            .and_then(Lang::parse);
        let lang = self.lang_for(&key, explicit, Some(&cmd.locale)).await;
        if let Err(e) = self
            .respond(
                cmd.id,
                &cmd.token,
                json!({ "type": 5, "data": { "flags": EPHEMERAL } }),
            )
            .await
        {
            tracing::warn!(interaction = %cmd.id, error = %e, "could not acknowledge /consult");
            return;
        }
        if cmd.guild_id.is_none() {
            self.remember_dm(user, cmd.channel_id);
        }
        let lock = self.user_lock(user);
        let g = lock.lock().await;
        let r: Result<ChannelId, BotError> = async {
            let open = self.store.open_session(&key).await?;
            let input = match &open {
                Some(s) if explicit.is_some_and(|l| l != s.lang) => {
                    // A switch of language starts over in the other script;
                    // the unfinished one is cancelled through the engine.
                    self.runner
                        .handle(&key, Input::Command(Command::Cancel), None)
                        .await?;
                    Input::Start
                }
                Some(_) => Input::Resume,
                None => Input::Start,
            };
            let turn = self.runner.handle(&key, input, Some(lang)).await?;
            self.send_turn(user, &turn, None).await?;
            Ok(self.dm_channel(user).await?)
        }
        .await;
        drop(g);
        let content = match r {
            Ok(dm) if cmd.guild_id.is_some() => t(
                lang,
                &format!("DMでご相談をお受けします。こちらからどうぞ: https://discord.com/channels/@me/{dm}"),
                &format!("The consultation continues in your direct messages: https://discord.com/channels/@me/{dm}"),
            ),
            Ok(_) => t(lang, "下のメッセージの質問にお答えください。", "Please answer the question below."),
            Err(BotError::Api(e)) if code_of(&e) == Some(50007) => t(
                lang,
                "DMを送れませんでした。サーバーの「プライバシー設定」で、メンバーからのダイレクトメッセージを許可してから、もう一度 /consult を実行してください。",
                "I could not send you a direct message. Allow direct messages from server members (Privacy Settings), then run /consult again.",
            ),
            Err(e) => {
                tracing::warn!(user = %user, error = %e, "could not start a consultation");
                sorry_text(lang)
            }
        };
        if let Err(e) = self
            .edit_original(&cmd.token, json!({ "content": content }))
            .await
        {
            tracing::warn!(interaction = %cmd.id, error = %e, "could not answer /consult");
        }
    }

    /// `/forget`: asks for confirmation first.
    pub(crate) async fn on_forget(&self, cmd: &CommandInteraction) {
        let user = cmd.user.id;
        let lang = self
            .lang_for(&user_key(user), None, Some(&cmd.locale))
            .await;
        let content = forget_texts::confirm(lang);
        let body = json!({
            "type": 4,
            "data": {
                "content": content,
                "flags": EPHEMERAL,
                "components": forget_buttons(user, lang),
            }
        });
        if let Err(e) = self.respond(cmd.id, &cmd.token, body).await {
            tracing::warn!(interaction = %cmd.id, error = %e, "could not answer /forget");
        }
    }

    /// The answer to `/forget`'s confirmation.
    pub(crate) async fn on_forget_press(&self, comp: &ComponentInteraction, rest: &str) {
        let user = comp.user.id;
        let key = user_key(user);
        let lang = self.lang_for(&key, None, Some(&comp.locale)).await;
        let (yes, owner) = match rest.split_once(':') {
            Some(("y", u)) => (true, u),
            Some(("n", u)) => (false, u),
            _ => return,
        };
        if owner != user.to_string() {
            return self
                .respond_ephemeral(comp.id, &comp.token, &forget_texts::not_yours(lang))
                .await;
        }
        if !yes {
            let body = json!({ "type": 7, "data": { "content": forget_texts::kept(lang), "components": [] } });
            let _ = self.respond(comp.id, &comp.token, body).await;
            return;
        }
        let body = json!({ "type": 7, "data": { "content": forget_texts::deleting(lang), "components": [] } });
        if let Err(e) = self.respond(comp.id, &comp.token, body).await {
            tracing::warn!(interaction = %comp.id, error = %e, "could not acknowledge /forget");
        }
        let lock = self.user_lock(user);
        let _g = lock.lock().await;
        let content = match self.forget(user).await {
            Ok(r) => forget_texts::done(lang, &r),
            Err(e) => {
                tracing::error!(user = %user, error = %e, "forget failed");
                forget_texts::failed(lang)
            }
        };
        if let Err(e) = self
            .edit_original(&comp.token, json!({ "content": content, "components": [] }))
            .await
        {
            tracing::warn!(interaction = %comp.id, error = %e, "could not report /forget");
        }
    }

    /// Deletes the owner's data in the store, then removes what the bot
    /// posted about them on Discord (case posts become tombstones, relayed
    /// owner messages and the rest of long case sheets are deleted).
    async fn forget(&self, user: UserId) -> Result<crate::store::ForgetReport, BotError> {
        let key = user_key(user);
        let cases = self.store.cases_of_user(&key).await?;
        let mut posts = Vec::new();
        for c in &cases {
            posts.extend(self.store.case_posts(c.id).await?);
        }
        let relayed = self.store.relay_messages_of_user(&key).await?;
        let live = self.prompts.get(&self.store, &key).await?;
        self.prompts.forget(&key).await;
        let report = self
            .store
            .forget_user(&key, self.runner.clock().now())
            .await?;
        tracing::info!(user = %user, cases = report.cases, "owner data deleted on request");
        for p in &posts {
            // Failures are logged; this forget is best effort, as the
            // owner is answered now.
            let _ = self.tombstone_post(p).await;
        }
        // What staff's channels hold of the owner's words: their relayed
        // messages and the rest of a long case sheet (each once; a retried
        // delivery records its pieces again).
        // Those recorded while the owner was being forgotten come back in
        // the report.
        let messages: Vec<(String, String)> = relayed
            .iter()
            .chain(report.relayed.iter())
            .filter(|m| m.direction == "to_staff" || m.direction == super::outbox::SHEET_PIECE)
            .map(|m| (m.channel_id.clone(), m.message_id.clone()))
            .collect();
        let _ = self.delete_relayed(&messages).await;
        // A hub on another platform (Slack) is cleaned by that platform's
        // sender, through the outbox, so it is retried and done by
        // whichever instance serves that platform.
        let relayed: Vec<_> = relayed
            .iter()
            .chain(report.relayed.iter())
            .cloned()
            .collect();
        crate::relay::queue_erase_and_wake(
            self.store.as_ref(),
            &key,
            "discord",
            &posts,
            &relayed,
            self.runner.clock().now(),
            || self.wake.notify_one(),
        )
        .await;
        if let Some(l) = live {
            self.disable_prompt(&l).await;
        }
        Ok(report)
    }

    /// Deletes the bot's copies of an owner's words in staff channels
    /// (`(channel, message)`: relayed messages, the rest of long case
    /// sheets), each once; ids that are not Discord's are skipped. Used
    /// by `/forget` here and by erase jobs queued by another platform's
    /// forget ([`super::outbox::DiscordSender`]).
    pub(crate) async fn delete_relayed(
        &self,
        messages: &[(String, String)],
    ) -> Vec<serenity::Error> {
        let mut failed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (channel, message) in messages.iter().filter(|m| seen.insert((*m).clone())) {
            if let (Ok(c), Ok(id)) = (channel.parse::<u64>(), message.parse::<u64>()) {
                match self
                    .http
                    .delete_message(
                        ChannelId::new(c),
                        MessageId::new(id),
                        Some("the owner deleted their data"),
                    )
                    .await
                {
                    Ok(()) => {}
                    // Already gone (staff deleted it, or an earlier try).
                    Err(e) if super::status_of(&e) == Some(404) => {}
                    Err(e) => {
                        tracing::warn!(message = %message, error = %e, "could not delete a relayed message");
                        failed.push(e);
                    }
                }
            }
        }
        failed
    }
}

/// The two buttons under the question `/forget` (or the owner's own words
/// for it) asks; a press is honoured only for the owner they were shown to.
fn forget_buttons(user: UserId, lang: Lang) -> Value {
    json!([render::row(vec![
        render::button(
            &format!("g:y:{user}"),
            &forget_texts::yes_label(lang),
            render::STYLE_DANGER
        ),
        render::button(
            &format!("g:n:{user}"),
            &forget_texts::no_label(lang),
            render::STYLE_SECONDARY
        ),
    ])])
}
