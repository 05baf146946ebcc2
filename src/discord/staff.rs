//! The staff side: a routed case as a post in the hub's channel (an embed
//! with the company information sheet, the rule that routed it, and the
//! case's state; its content says how to reply and why the case came to
//! this hub), its discussion thread (made when something is first posted
//! in it, or started by staff by hand), and the buttons staff work it
//! with: Claim / Release, Forward, Advance step, Close.
//!
//! Only members holding the hub's staff role (`targets.discord.staff_role`
//! in routing.yaml) may press them; others get an ephemeral refusal. Every
//! action goes through `Store::update_case` / `forward_case`, which write
//! the audit log, and is announced in the case's thread.
//!
//! Forwarding to a hub the owner's consent does not name asks the owner
//! first (buttons in their DM) and moves the case only on their yes; the
//! new consent, the move and the delivery are committed together.

use super::desk::DiscordMedium;
use super::render::{self, truncate, Chosen};
use super::{user_key, Bot, BotError};
use crate::casework::{self, Outcome};
use crate::desk::post::{ButtonKind, ForwardedFrom};
use crate::desk::{Action, Arg, DeskTexts, Network, Text};
use crate::domain::ids::CaseId;
use crate::render::escape_markdown;
use crate::routing::DiscordTarget;
use crate::script::Lang;
use crate::store::{CasePost, CaseRecord, CaseStatus, ForwardStatus};
use serde_json::{json, Value};
use serenity::all::{
    ActionRowComponent, ChannelId, ComponentInteraction, ComponentInteractionDataKind, MessageId,
    ModalInteraction, RoleId, UserId,
};

/// Embed limits (Discord): title 256, description 4096, field value 1024,
/// 6000 characters in all.
const EMBED_TOTAL: usize = 6000;
const EMBED_DESCRIPTION: usize = 4096;
const FIELD_VALUE: usize = 1024;

/// A snowflake stored as text; `None` for anything else (or 0).
fn nonzero(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|n| *n != 0)
}

/// Whether Discord says a thread was started from this message.
fn has_thread(msg: &serenity::all::Message) -> bool {
    msg.thread.is_some()
        || msg
            .flags
            .is_some_and(|f| f.contains(serenity::all::MessageFlags::HAS_THREAD))
}

/// The message that announces a case in a hub's channel, without the
/// parts that depend on whether it is new.
pub(crate) struct PostView {
    pub embed: Value,
    /// Summary text that did not fit in the embed, posted in the thread.
    pub overflow: Vec<String>,
    pub components: Vec<Value>,
}

/// Renders a case for the post in `hub_id`'s channel, within Discord's
/// embed limits: a summary too long for the embed continues in the thread.
/// The words come from the desk ([`crate::desk::post`]).
pub(crate) fn post_view(
    case: &CaseRecord,
    hub_id: &str,
    network: &Network,
    texts: &DeskTexts,
) -> PostView {
    let parts = crate::desk::post::post_parts(network, case, hub_id, None, "");
    let r = |t: &Text| {
        texts
            .render(Lang::Ja, t, &DiscordMedium)
            .unwrap_or_else(|e| {
                tracing::error!(key = %t.key, error = %e, "a desk text does not render");
                t.key.clone()
            })
    };
    let title = truncate(
        &format!("{} {}", case.id, escape_markdown(&case.headline)),
        256,
    );
    let status = r(&parts.status);
    let hub = r(&parts.hub);
    let mut fields = vec![
        json!({ "name": r(&Text::new("post.field_hub")), "value": truncate(&hub, FIELD_VALUE), "inline": true }),
        json!({ "name": r(&Text::new("post.field_step")), "value": format!("STEP {}", case.step), "inline": true }),
        json!({ "name": r(&Text::new("post.field_status")), "value": truncate(&status, FIELD_VALUE), "inline": true }),
        json!({
            "name": r(&Text::new("post.field_rule")),
            "value": truncate(&format!("`{}` — {}", case.route.rule, case.route.reason), FIELD_VALUE),
            "inline": false
        }),
    ];
    if !case.tags.is_empty() {
        fields.push(json!({ "name": r(&Text::new("post.field_tags")), "value": truncate(&case.tags.join(", "), FIELD_VALUE), "inline": false }));
    }
    let footer = format!("madoguchi · {}", case.id);
    let used: usize = title.chars().count()
        + footer.chars().count()
        + fields
            .iter()
            .map(|f| {
                f["name"].as_str().unwrap_or("").chars().count()
                    + f["value"].as_str().unwrap_or("").chars().count()
            })
            .sum::<usize>();
    let budget = EMBED_TOTAL
        .saturating_sub(used + 100)
        .min(EMBED_DESCRIPTION);
    let more = format!("\n\n{}", r(&Text::new("post.continued")));
    let summary = case.summary_markdown.trim();
    let (description, overflow) = if summary.chars().count() <= budget {
        (summary.to_string(), Vec::new())
    } else {
        let mut parts = render::split_text(
            summary,
            budget.saturating_sub(more.chars().count()).max(100),
        );
        let first = parts.remove(0);
        let rest = parts.join("\n");
        (format!("{first}{more}"), render::split_text(&rest, 1900))
    };
    let color = match case.status {
        CaseStatus::Open => 0x3498db,
        CaseStatus::Claimed => 0xf1c40f,
        CaseStatus::Closed => 0x95a5a6,
    };
    let embed = json!({
        "title": title,
        "description": description,
        "color": color,
        "fields": fields,
        "footer": { "text": footer },
        "timestamp": case.created_at.to_rfc3339(),
    });
    let mut components = Vec::new();
    if !parts.buttons.is_empty() {
        let id = case.id.0;
        let buttons = parts
            .buttons
            .iter()
            .map(|b| {
                let (custom_id, style) = match b.kind {
                    ButtonKind::Claim => (format!("s:claim:{id}"), render::STYLE_PRIMARY),
                    ButtonKind::Release => (format!("s:release:{id}"), render::STYLE_SECONDARY),
                    ButtonKind::Forward => (format!("s:fwd:{id}"), render::STYLE_SECONDARY),
                    ButtonKind::Advance => (format!("s:adv:{id}"), render::STYLE_SECONDARY),
                    ButtonKind::Close => (format!("s:close:{id}"), render::STYLE_DANGER),
                };
                let mut v = render::button(&custom_id, &r(&b.label), style);
                if !b.enabled {
                    v["disabled"] = json!(true);
                }
                v
            })
            .collect();
        components.push(render::row(buttons));
    }
    PostView {
        embed,
        overflow,
        components,
    }
}

/// The case post's content: the head line, then the intro. What does not
/// fit in Discord's 2,000 characters continues in the thread, in pieces of
/// at most 1,900 (returned second; usually empty).
pub(crate) fn post_content(head: &str, intro: &str, continued: &str) -> (String, Vec<String>) {
    let intro = intro.trim_end();
    let whole = format!("{head}\n{intro}");
    if whole.chars().count() <= render::MAX_CONTENT {
        return (whole, Vec::new());
    }
    let more = format!("\n{continued}");
    let room = render::MAX_CONTENT
        .saturating_sub(head.chars().count() + 1 + more.chars().count())
        .max(100);
    let mut parts = render::split_text(intro, room);
    let first = if parts.is_empty() {
        String::new()
    } else {
        parts.remove(0)
    };
    let content = truncate(&format!("{head}\n{first}{more}"), render::MAX_CONTENT);
    (content, render::split_text(&parts.join("\n"), 1900))
}

impl Bot {
    /// A hub's channel and staff role, from the current routing.
    pub(crate) fn hub_target(&self, hub_id: &str) -> Option<DiscordTarget> {
        let b = self.runner.bundle();
        b.flows
            .iter()
            .find_map(|f| f.routing.hub(hub_id).and_then(|h| h.discord.clone()))
    }

    /// A hub's name as staff read it (Japanese, from routing.yaml).
    pub(crate) fn hub_name(&self, hub_id: &str) -> String {
        let b = self.runner.bundle();
        b.flows
            .iter()
            .find_map(|f| f.routing.hub(hub_id).map(|h| h.name.clone()))
            .unwrap_or_else(|| hub_id.to_string())
    }

    /// Renders a case for the post in `hub_id`'s channel.
    pub(crate) fn post_view(&self, case: &CaseRecord, hub_id: &str) -> PostView {
        post_view(case, hub_id, &self.network(), &self.desk_texts)
    }

    /// The case post's content for `hub_id` (the head line, pinging the
    /// hub's staff role, then the intro), what of the intro continues in
    /// the thread, and that role.
    pub(crate) async fn post_text(
        &self,
        case: &CaseRecord,
        hub_id: &str,
    ) -> (String, Vec<String>, Option<u64>) {
        let role = self.hub_target(hub_id).and_then(|t| t.staff_role);
        let forwarded = self.forwarded_to(case, hub_id).await;
        let reply = match self.cfg.discord.prefix() {
            Some(p) => format!("`/reply` か「{p} 本文」 (`/reply` or `{p} text`)"),
            None => "`/reply`".to_string(),
        };
        let parts = crate::desk::post::post_parts(
            &self.network(),
            case,
            hub_id,
            forwarded.as_ref(),
            &reply,
        );
        let head = self.staff_text(&parts.head);
        let head = match role {
            Some(r) => format!("<@&{r}> {head}"),
            None => head,
        };
        // The intro is in the post itself so that handing a case over is
        // one call; the thread is made only when something is first
        // posted in it.
        let intro: String = parts
            .intro
            .iter()
            .map(|t| self.staff_text(t) + "\n")
            .collect();
        let (content, rest) = post_content(
            &head,
            &intro,
            &self.staff_text(&Text::new("post.continued")),
        );
        (content, rest, role)
    }

    /// Where the case came from when it was last forwarded to `hub_id`, and
    /// why, from the audit log.
    async fn forwarded_to(&self, case: &CaseRecord, hub_id: &str) -> Option<ForwardedFrom> {
        let audit = self.store.audit(Some(case.id)).await.ok()?;
        audit
            .iter()
            .rev()
            .find(|a| a.action == "forward" && a.detail["to"] == hub_id)
            .map(|f| ForwardedFrom {
                hub: f.detail["from"].as_str().unwrap_or_default().to_string(),
                reason: f.detail["reason"].as_str().unwrap_or_default().to_string(),
            })
    }
    /// The thread of a case's post, made on first use: the stored one, or
    /// a new thread from the post's message, named `"{case id} {headline}"`.
    /// Discord answers 160004 when the message already has a thread (staff
    /// started one by hand in their client, or a concurrent call of ours
    /// won); a thread started from a message has the message's id, so that
    /// id is the thread's. Either way the id is stored with the post.
    pub(crate) async fn ensure_thread(
        &self,
        post: &CasePost,
        headline: &str,
    ) -> Result<ChannelId, BotError> {
        if let Some(t) = post.thread_id.as_deref().and_then(nonzero) {
            return Ok(ChannelId::new(t));
        }
        let (Some(channel), Some(message)) = (nonzero(&post.channel_id), nonzero(&post.message_id))
        else {
            return Err(BotError::Reply(format!(
                "the post of {} in {} has no valid ids",
                post.case, post.hub_id
            )));
        };
        // A thread name is shown as plain text (no markdown, no pings), so
        // only control and bidi characters in the headline are made visible.
        let name = truncate(
            &format!(
                "{} {}",
                post.case,
                crate::escape::neutralize_controls(&headline.replace('\n', " "))
            ),
            100,
        );
        let thread = match self
            .http
            .create_thread_from_message(
                ChannelId::new(channel),
                MessageId::new(message),
                &json!({ "name": name, "auto_archive_duration": 10080 }),
                None,
            )
            .await
        {
            Ok(t) => t.id,
            Err(e) if super::code_of(&e) == Some(160004) => ChannelId::new(message),
            Err(e) => return Err(e.into()),
        };
        self.store
            .save_case_post(&CasePost {
                thread_id: Some(thread.to_string()),
                ..post.clone()
            })
            .await?;
        tracing::debug!(case = %post.case, hub = %post.hub_id, thread = %thread, "case thread in use");
        Ok(thread)
    }

    /// Posts a short note in the thread of a case's post for `hub_id`,
    /// making the thread if this is the first thing posted in it.
    pub(crate) async fn note(&self, case: CaseId, hub_id: &str, text: &str) {
        let posts = match self.store.case_posts(case).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(case = %case, error = %e, "cannot find the case's posts");
                return;
            }
        };
        let Some(p) = posts
            .iter()
            .find(|p| p.hub_id == hub_id && p.transport == "discord")
        else {
            return;
        };
        let headline = match p.thread_id {
            Some(_) => String::new(),
            None => match self.store.case(case).await {
                Ok(Some(c)) => c.headline,
                _ => String::new(),
            },
        };
        let target = match self.ensure_thread(p, &headline).await {
            Ok(t) => t,
            Err(e) => {
                // Without Create Public Threads the note still reaches staff,
                // in the channel, rather than being lost.
                tracing::warn!(case = %case, error = %e, "could not make the case thread; the note goes to the channel");
                match nonzero(&p.channel_id) {
                    Some(c) => ChannelId::new(c),
                    None => return,
                }
            }
        };
        for piece in render::split_text(text, 1900) {
            if let Err(e) = self.send(target, json!({ "content": piece })).await {
                tracing::warn!(case = %case, error = %e, "could not post a note in the case thread");
            }
        }
    }

    /// Brings every post of a case up to date (status, buttons; after a
    /// forward the old hub's post loses its buttons and the new hub's post
    /// gains them).
    /// With `content`, the posts' text is rewritten as well (after a
    /// forward, the hub that had a copy now holds the working post, and
    /// the old hub's post becomes the copy); the edit pings nobody again.
    /// Returns the case's posts as read.
    pub(crate) async fn refresh_posts(
        &self,
        case: &CaseRecord,
        except: Option<MessageId>,
        content: bool,
    ) -> Vec<CasePost> {
        let posts = self.store.case_posts(case.id).await.unwrap_or_default();
        for p in &posts {
            if except.is_some_and(|m| m.to_string() == p.message_id) {
                continue;
            }
            if let Some(Err(e)) = self.refresh_post(case, p, content).await {
                tracing::warn!(case = %case.id, message = %p.message_id, error = %e, "could not update a case post");
            }
        }
        // The case's posts on other platforms are brought up to date by
        // their senders, through the relay's outbox.
        let job = crate::relay::Refresh { text: content };
        let now = self.runner.clock().now();
        match crate::relay::queue_refresh(self.store.as_ref(), case, job, Some("discord"), now)
            .await
        {
            Ok(ids) if !ids.is_empty() => self.wake.notify_one(),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "could not queue the refresh of posts on another platform")
            }
        }
        posts
    }

    /// Edits one Discord post of a case to show the case as it is (status,
    /// buttons; with `content` its text too); `None` when the post is not
    /// Discord's. Also what a refresh job from the relay's outbox does.
    pub(crate) async fn refresh_post(
        &self,
        case: &CaseRecord,
        p: &CasePost,
        content: bool,
    ) -> Option<Result<serenity::all::Message, serenity::Error>> {
        if p.transport != "discord" {
            return None;
        }
        let (Ok(c), Ok(m)) = (p.channel_id.parse::<u64>(), p.message_id.parse::<u64>()) else {
            return None;
        };
        let v = self.post_view(case, &p.hub_id);
        let mut body = json!({ "embeds": [v.embed], "components": v.components });
        if content {
            body["content"] = json!(self.post_text(case, &p.hub_id).await.0);
        }
        Some(self.edit(ChannelId::new(c), MessageId::new(m), body).await)
    }

    /// After the owner deleted their data: the post keeps only the case id
    /// (its content, which carried the routing reason, is emptied too).
    /// Returns the calls that failed (each is logged too), so an erase job
    /// can be retried; a message or thread already gone (404) is done.
    pub(crate) async fn tombstone_post(&self, p: &CasePost) -> Vec<serenity::Error> {
        let mut failed = Vec::new();
        let (Some(c), Some(m)) = (nonzero(&p.channel_id), nonzero(&p.message_id)) else {
            return failed;
        };
        let title = self.staff_text(
            &Text::new("post.deleted_title").arg("case", Arg::code(&p.case.to_string())),
        );
        let embed = json!({
            "title": title,
            "description": self.staff_text(&Text::new("post.deleted_body")),
            "color": 0x95a5a6,
        });
        let edited = self
            .edit(
                ChannelId::new(c),
                MessageId::new(m),
                json!({ "content": "", "embeds": [embed], "components": [] }),
            )
            .await;
        // The thread was named after the case's headline (the company). It
        // is the stored one, or one staff started by hand on the post (same
        // id as the message), which the edited message reports; if the edit
        // failed, whether such a thread exists is unknown, so it is tried.
        let thread = match p.thread_id.as_deref().and_then(nonzero) {
            Some(t) => Some((t, true)),
            None => match &edited {
                Ok(msg) if !has_thread(msg) => None,
                Ok(_) => Some((m, true)),
                Err(_) => Some((m, false)),
            },
        };
        match edited {
            Ok(_) => {}
            // Deleted by staff: nothing of the owner is left in it.
            Err(e) if super::status_of(&e) == Some(404) => {}
            Err(e) => {
                tracing::warn!(message = %p.message_id, error = %e, "could not clear a case post");
                failed.push(e);
            }
        }
        let Some((t, known)) = thread else {
            return failed;
        };
        let name = truncate(&title, 100);
        match self
            .http
            .edit_thread(
                ChannelId::new(t),
                &json!({ "name": name }),
                Some("the owner deleted their data"),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if super::status_of(&e) == Some(404) => {
                if known {
                    tracing::debug!(thread = t, "the case thread is gone already");
                } else {
                    tracing::debug!(thread = t, "the case post has no thread to rename");
                }
                return failed;
            }
            Err(e) => {
                tracing::warn!(thread = t, error = %e, "could not rename a case thread");
                failed.push(e);
            }
        }
        // The note is for staff only (nothing of the owner is in it), so a
        // failure to post it does not hold the erasure back; its nonce
        // keeps a repeated erasure from posting it twice in Discord's
        // nonce window.
        let note = self.staff_text(&Text::new("post.deleted_note"));
        if let Err(e) = self
            .send(
                ChannelId::new(t),
                json!({ "content": note, "nonce": format!("mdg-x{t}"), "enforce_nonce": true }),
            )
            .await
        {
            tracing::warn!(thread = t, error = %e, "could not post the deletion note in a case thread");
        }
        failed
    }

    /// `Ok` when the member is staff of the hub (the desk decides, from the
    /// hub's configured staff role); otherwise the refusal to show them.
    pub(crate) fn staff_check(
        &self,
        roles: Option<&[RoleId]>,
        hub_id: &str,
        user: UserId,
    ) -> Result<(), String> {
        let a = super::desk::actor(user, roles);
        crate::desk::permit(&self.network(), &a, hub_id).map_err(|t| self.staff_text(&t))
    }

    /// The hub whose post carries `message`, if it is a case post.
    async fn post_hub(&self, message: MessageId) -> Option<String> {
        self.store
            .find_case_post("discord", &message.to_string())
            .await
            .ok()
            .flatten()
            .map(|p| p.hub_id)
    }

    /// A press on a case post's button, or on the forward hub select.
    pub(crate) async fn on_staff_component(&self, comp: &ComponentInteraction, rest: &str) {
        let Some((action, id)) = rest.split_once(':') else {
            return;
        };
        let Ok(id) = id.parse::<i64>() else { return };
        let case = match self.store.case(CaseId(id)).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                let msg = self.staff_text(&Text::new("refused.unknown_case"));
                return self.respond_ephemeral(comp.id, &comp.token, &msg).await;
            }
            Err(e) => {
                tracing::warn!(case = id, error = %e, "cannot load a case");
                return self
                    .respond_ephemeral(
                        comp.id,
                        &comp.token,
                        &self.staff_text(&Text::new("error.try_again_shortly")),
                    )
                    .await;
            }
        };
        let roles = comp.member.as_ref().map(|m| m.roles.as_slice());
        if let Err(refusal) = self.staff_check(roles, &case.hub_id, comp.user.id) {
            tracing::info!(case = %case.id, user = %comp.user.id, action, "staff action refused");
            return self.respond_ephemeral(comp.id, &comp.token, &refusal).await;
        }
        // Buttons live on the responsible hub's post only (the select of
        // the forward menu is on an ephemeral message, not a post).
        let from_hub = if action != "fh" {
            self.post_hub(comp.message.id).await
        } else {
            None
        };
        if from_hub.as_ref().is_some_and(|h| *h != case.hub_id) {
            let msg = self.staff_text(
                &Text::new("refused.other_hub").arg("hub", Arg::text(&self.hub_name(&case.hub_id))),
            );
            return self.respond_ephemeral(comp.id, &comp.token, &msg).await;
        }
        let action = match action {
            "claim" => Action::Claim,
            "release" => Action::Release,
            "adv" => Action::Advance,
            "close" => {
                let body = json!({
                    "type": 9,
                    "data": {
                        "custom_id": format!("s:co:{id}"),
                        "title": render::truncate(&self.staff_text(&Text::new("form.close_title")), 45),
                        "components": [render::row(vec![json!({
                            "type": 4, "custom_id": "outcome", "style": 1,
                            "label": render::truncate(&self.staff_text(&Text::new("form.outcome_label")), 45),
                            "placeholder": render::truncate(&self.staff_text(&Text::new("form.outcome_placeholder")), 100),
                            "min_length": 1, "max_length": 200, "required": true,
                        })])],
                    }
                });
                if let Err(e) = self.respond(comp.id, &comp.token, body).await {
                    tracing::warn!(error = %e, "could not open the close form");
                }
                return;
            }
            "fwd" => return self.forward_menu(comp, &case).await,
            "fh" => {
                let hub = match &comp.data.kind {
                    ComponentInteractionDataKind::StringSelect { values } => {
                        values.first().cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                };
                if self.hub_target(&hub).is_none() || hub == case.hub_id {
                    let msg = self.staff_text(&Text::new("refused.cannot_forward_there"));
                    return self.respond_ephemeral(comp.id, &comp.token, &msg).await;
                }
                let body = json!({
                    "type": 9,
                    "data": {
                        "custom_id": format!("s:fr:{id}:{hub}"),
                        "title": render::truncate(&self.render_plain(&Text::new("form.reason_title").arg("hub", Arg::text(&self.hub_name(&hub)))), 45),
                        "components": [render::row(vec![json!({
                            "type": 4, "custom_id": "reason", "style": 2,
                            "label": render::truncate(&self.staff_text(&Text::new("form.reason_label")), 45),
                            "min_length": 1, "max_length": 500, "required": true,
                        })])],
                    }
                });
                if let Err(e) = self.respond(comp.id, &comp.token, body).await {
                    tracing::warn!(error = %e, "could not open the forward form");
                }
                return;
            }
            _ => return,
        };
        let name = action.name();
        let actor = super::desk::actor(comp.user.id, roles);
        let now = self.runner.clock().now();
        let network = self.network();
        let outcome = casework::act(
            self.store.as_ref(),
            &network,
            &actor,
            case.id,
            from_hub.as_deref(),
            action,
            now,
        )
        .await;
        match outcome {
            Ok(Outcome::Done {
                effects, applied, ..
            }) => {
                let updated = applied.case;
                let v = self.post_view(&updated, &updated.hub_id);
                let body = json!({ "type": 7, "data": { "embeds": [v.embed], "components": v.components } });
                if let Err(e) = self.respond(comp.id, &comp.token, body).await {
                    tracing::warn!(error = %e, "could not update the case post");
                }
                tracing::info!(case = %case.id, user = %comp.user.id, action = name, "staff action");
                self.post_notes(case.id, &effects).await;
                self.refresh_posts(&updated, Some(comp.message.id), false)
                    .await;
            }
            Ok(Outcome::Refused(t)) => {
                tracing::info!(case = %case.id, user = %comp.user.id, action = name, refusal = %t.key, "staff action refused");
                let msg = self.staff_text(&t);
                self.respond_ephemeral(comp.id, &comp.token, &msg).await;
            }
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "staff action failed");
                self.respond_ephemeral(
                    comp.id,
                    &comp.token,
                    &self.staff_text(&Text::new("error.not_saved")),
                )
                .await;
            }
        }
    }

    /// Posts a decision's notes, each in the thread of its hub's post.
    async fn post_notes(&self, case: CaseId, fx: &crate::desk::Effects) {
        for n in &fx.notes {
            let text = self.staff_text(&n.text);
            self.note(case, &n.hub, &text).await;
        }
        // A hub whose thread is on another platform gets its notes through
        // the relay's outbox.
        if let Ok(Some(c)) = self.store.case(case).await {
            let now = self.runner.clock().now();
            match crate::relay::queue_notes_elsewhere(self.store.as_ref(), &c, fx, "discord", now)
                .await
            {
                Ok(ids) if !ids.is_empty() => self.wake.notify_one(),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(case = %case, error = %e, "could not queue notes for another platform")
                }
            }
        }
    }
    /// The hubs a case can be forwarded to, marked by whether the owner's
    /// consent already covers them.
    async fn forward_menu(&self, comp: &ComponentInteraction, case: &CaseRecord) {
        let covered = self.consented_hubs(case).await;
        let b = self.runner.bundle();
        let Some(flow) = b.flows.first() else { return };
        let options: Vec<Value> = flow
            .routing
            .hubs
            .iter()
            .filter(|h| h.discord.is_some() && h.id.as_str() != case.hub_id)
            .take(render::MAX_SELECT_OPTIONS)
            .map(|h| {
                let mut o = render::option(&h.name, h.id.as_str());
                let d = if covered.iter().any(|c| c == h.id.as_str()) {
                    self.staff_text(&Text::new("menu.consented"))
                } else {
                    self.staff_text(&Text::new("menu.will_ask"))
                };
                o["description"] = json!(d);
                o
            })
            .collect();
        if options.is_empty() {
            return self
                .respond_ephemeral(
                    comp.id,
                    &comp.token,
                    &self.staff_text(&Text::new("menu.no_other_hub")),
                )
                .await;
        }
        let body = json!({
            "type": 4,
            "data": {
                "content": self.staff_text(&Text::new("menu.forward_prompt").arg("case", Arg::code(&case.id.to_string()))),
                "flags": 64,
                "components": [render::row(vec![render::select(&format!("s:fh:{}", case.id.0), &self.staff_text(&Text::new("menu.choose_hub")), options, 1, 1)])],
            }
        });
        if let Err(e) = self.respond(comp.id, &comp.token, body).await {
            tracing::warn!(error = %e, "could not show the forward menu");
        }
    }

    /// Hubs named in a granted consent for this case.
    async fn consented_hubs(&self, case: &CaseRecord) -> Vec<String> {
        match casework::load(self.store.as_ref(), case.id).await {
            Ok(Some(v)) => v.consented_hubs(),
            _ => Vec::new(),
        }
    }

    /// The close form and the forward reason form.
    pub(crate) async fn on_staff_modal(&self, m: &ModalInteraction, rest: &str) {
        let mut parts = rest.splitn(3, ':');
        let (Some(kind), Some(id)) = (
            parts.next(),
            parts.next().and_then(|x| x.parse::<i64>().ok()),
        ) else {
            return;
        };
        let hub = parts.next().unwrap_or_default().to_string();
        let text = m
            .data
            .components
            .iter()
            .flat_map(|r| r.components.iter())
            .find_map(|c| match c {
                ActionRowComponent::InputText(i) => i.value.clone(),
                _ => None,
            })
            .unwrap_or_default();
        let case = match self.store.case(CaseId(id)).await {
            Ok(Some(c)) => c,
            _ => {
                let msg = self.staff_text(&Text::new("refused.unknown_case"));
                return self.respond_ephemeral(m.id, &m.token, &msg).await;
            }
        };
        let roles = m.member.as_ref().map(|x| x.roles.as_slice());
        if let Err(refusal) = self.staff_check(roles, &case.hub_id, m.user.id) {
            return self.respond_ephemeral(m.id, &m.token, &refusal).await;
        }
        let actor = super::desk::actor(m.user.id, roles);
        let now = self.runner.clock().now();
        match kind {
            "co" => {
                let from_hub = match &m.message {
                    Some(msg) => self.post_hub(msg.id).await,
                    None => None,
                };
                let outcome = casework::act(
                    self.store.as_ref(),
                    &self.network(),
                    &actor,
                    case.id,
                    from_hub.as_deref(),
                    Action::Close {
                        outcome: text.clone(),
                    },
                    now,
                )
                .await;
                match outcome {
                    Ok(Outcome::Done {
                        effects, applied, ..
                    }) => {
                        let updated = applied.case;
                        let v = self.post_view(&updated, &updated.hub_id);
                        let body = if m.message.is_some() {
                            json!({ "type": 7, "data": { "embeds": [v.embed], "components": v.components } })
                        } else {
                            let done = effects
                                .reply
                                .as_ref()
                                .map(|t| self.staff_text(t))
                                .unwrap_or_default();
                            json!({ "type": 4, "data": { "content": done, "flags": 64 } })
                        };
                        if let Err(e) = self.respond(m.id, &m.token, body).await {
                            tracing::warn!(error = %e, "could not answer the close form");
                        }
                        tracing::info!(case = %case.id, user = %m.user.id, "case closed");
                        self.post_notes(case.id, &effects).await;
                        self.refresh_posts(&updated, m.message.as_ref().map(|x| x.id), false)
                            .await;
                    }
                    Ok(Outcome::Refused(t)) => {
                        let msg = self.staff_text(&t);
                        self.respond_ephemeral(m.id, &m.token, &msg).await;
                    }
                    Err(e) => {
                        tracing::warn!(case = %case.id, error = %e, "close failed");
                        self.respond_ephemeral(
                            m.id,
                            &m.token,
                            &self.staff_text(&Text::new("error.not_saved")),
                        )
                        .await;
                    }
                }
            }
            "fr" => {
                if let Err(e) = self.respond(m.id, &m.token, json!({ "type": 6 })).await {
                    tracing::warn!(error = %e, "could not acknowledge the forward form");
                }
                let result = self.forward(&case, &hub, &text, &actor).await;
                let content = match result {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(case = %case.id, error = %e, "forward failed");
                        self.staff_text(&Text::new("error.forward_failed"))
                    }
                };
                if let Err(e) = self
                    .edit_original(&m.token, json!({ "content": content, "components": [] }))
                    .await
                {
                    tracing::warn!(error = %e, "could not report the forward");
                }
            }
            _ => {}
        }
    }

    /// Forwards through the desk: at once when the owner's consent covers
    /// the hub, otherwise by asking the owner in their DM. Returns what to
    /// tell the staff member.
    async fn forward(
        &self,
        case: &CaseRecord,
        to_hub: &str,
        reason: &str,
        actor: &crate::desk::Actor,
    ) -> Result<String, BotError> {
        let now = self.runner.clock().now();
        let outcome = casework::act(
            self.store.as_ref(),
            &self.network(),
            actor,
            case.id,
            None,
            Action::Forward {
                to_hub: to_hub.to_string(),
                reason: reason.to_string(),
            },
            now,
        )
        .await?;
        let (effects, applied) = match outcome {
            Outcome::Refused(t) => return Ok(self.staff_text(&t)),
            Outcome::Done {
                effects, applied, ..
            } => (effects, applied),
        };
        let reply = effects
            .reply
            .as_ref()
            .map(|t| self.staff_text(t))
            .unwrap_or_default();
        let Some(ask) = &effects.consent_ask else {
            self.after_forward(&applied.case, &effects).await;
            return Ok(reply);
        };
        // Not covered: the owner decides, from buttons in their DM.
        let Some(req) = applied.request else {
            return Err(BotError::Reply(format!(
                "the forward of {} to {to_hub} made no request",
                case.id
            )));
        };
        // The request goes to the owner's DM on their platform, with yes /
        // no buttons, through the relay's outbox.
        let what = crate::relay::What {
            owner: false,
            notes: false,
        };
        match crate::relay::queue(
            self.store.as_ref(),
            &applied.case,
            &effects,
            Some((req, ask)),
            what,
            now,
        )
        .await
        {
            Ok(_) => self.wake.notify_one(),
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "could not ask the owner about a forward");
                self.store
                    .decide_forward_request(req, ForwardStatus::Withdrawn, now)
                    .await?;
                return Ok(self.staff_text(&Text::new("error.owner_not_asked")));
            }
        }
        self.post_notes(case.id, &effects).await;
        Ok(reply)
    }

    /// The posts, threads and pings after a case moved to another hub.
    async fn after_forward(&self, case: &CaseRecord, fx: &crate::desk::Effects) {
        self.wake.notify_one();
        tracing::info!(case = %case.id, to = %case.hub_id, "case forwarded");
        let posts = self.refresh_posts(case, None, true).await;
        self.post_notes(case.id, fx).await;
        // When the new hub had a copy of the case, no new post (which pings
        // its staff role) is made for it: its staff are pinged in their
        // channel, in a reply to the post they now hold. In the thread the
        // ping would reach only the thread's members.
        for hub in fx.staff_to_call() {
            if let Some(p) = posts.iter().find(|p| p.hub_id == hub) {
                let from = self.forwarded_from(fx);
                self.ping_new_hub(case, p, &from).await;
            }
        }
    }

    /// The escaped name of the hub a forward came from, as its notes say.
    fn forwarded_from(&self, fx: &crate::desk::Effects) -> String {
        fx.notes
            .iter()
            .find(|n| n.text.key == "note.forwarded_here")
            .and_then(|n| match n.text.get("from") {
                Some(Arg::Text(s)) => Some(escape_markdown(s)),
                _ => None,
            })
            .unwrap_or_default()
    }
    /// Pings the staff role of the hub of post `p` in its channel, replying
    /// to the post, after the case was forwarded to that hub.
    async fn ping_new_hub(&self, case: &CaseRecord, p: &CasePost, from_name: &str) {
        let Some(role) = self.hub_target(&p.hub_id).and_then(|t| t.staff_role) else {
            return;
        };
        let (Some(channel), Some(message)) = (nonzero(&p.channel_id), nonzero(&p.message_id))
        else {
            return;
        };
        let body = json!({
            "content": format!("<@&{role}> {}", self.staff_text(&Text::new("post.ping_forwarded").arg("case", Arg::code(&case.id.to_string())).arg("from", Arg::code(from_name)))),
            "message_reference": { "message_id": message.to_string(), "fail_if_not_exists": false },
            "allowed_mentions": { "parse": [], "roles": [role.to_string()], "replied_user": false },
        });
        if let Err(e) = self.send(ChannelId::new(channel), body).await {
            tracing::warn!(case = %case.id, error = %e, "could not ping the hub a case was forwarded to");
        }
    }

    /// The owner's answer to a forward request.
    pub(crate) async fn on_forward_answer(&self, comp: &ComponentInteraction, rest: &str) {
        let Some((yn, id)) = rest.split_once(':') else {
            return;
        };
        let Ok(id) = id.parse::<i64>() else { return };
        let yes = yn == "y";
        let key = user_key(comp.user.id);
        let lang = self.lang_for(&key, None, Some(&comp.locale)).await;
        let req = match self.store.forward_request(id).await {
            Ok(Some(r)) if r.user == key => r,
            _ => {
                return self
                    .respond_ephemeral(
                        comp.id,
                        &comp.token,
                        &self.render_text(lang, &Text::new("owner.request_gone")),
                    )
                    .await
            }
        };
        // An answered or withdrawn request: the desk says which (and, for
        // a withdrawn one, why), and nothing is applied.
        if req.status != ForwardStatus::Pending {
            let now = self.runner.clock().now();
            let network = self.network();
            let r = casework::owner_answer(self.store.as_ref(), &network, &req, yes, "", now);
            let t = match r.await {
                Ok(Outcome::Refused(t)) => t,
                _ => Text::new("owner.already_answered"),
            };
            let msg = self.render_text(lang, &t);
            return self.respond_ephemeral(comp.id, &comp.token, &msg).await;
        }
        let rows = serde_json::to_value(&comp.message.components).unwrap_or(Value::Array(vec![]));
        let chosen = Chosen {
            custom_id: comp.data.custom_id.clone(),
            values: vec![],
        };
        let body =
            json!({ "type": 7, "data": { "components": render::disabled(&rows, Some(&chosen)) } });
        if let Err(e) = self.respond(comp.id, &comp.token, body).await {
            tracing::warn!(error = %e, "could not acknowledge the owner's answer");
        }
        let now = self.runner.clock().now();
        let r = casework::owner_answer(
            self.store.as_ref(),
            &self.network(),
            &req,
            yes,
            &comp.message.content,
            now,
        )
        .await;
        let text = match r {
            Ok(Outcome::Refused(t)) => self.render_text(lang, &t),
            Ok(Outcome::Done {
                effects, applied, ..
            }) => {
                let moved = effects
                    .changes
                    .iter()
                    .any(|c| matches!(c, crate::desk::Change::Forward { .. }));
                if moved {
                    self.after_forward(&applied.case, &effects).await;
                } else {
                    self.post_notes(applied.case.id, &effects).await;
                }
                effects
                    .reply
                    .as_ref()
                    .map(|t| self.render_text(lang, t))
                    .unwrap_or_default()
            }
            Err(e) => {
                tracing::warn!(request = id, error = %e, "could not apply the owner's answer");
                super::owner::sorry_text(lang)
            }
        };
        if let Ok(dm) = self.dm_channel(comp.user.id).await {
            let _ = self.send(dm, json!({ "content": text })).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{SessionId, UserKey};
    use crate::routing::{HubRef, RouteDecision};

    fn case(summary: &str) -> CaseRecord {
        let hub = |id: &str| HubRef {
            id: id.into(),
            name: id.into(),
        };
        CaseRecord {
            id: CaseId(7),
            session: SessionId(1),
            user: UserKey::parse("discord:1").unwrap(),
            version: "v".into(),
            headline: "@everyone 株式会社*テスト*".into(),
            summary_plain: summary.into(),
            summary_markdown: summary.into(),
            route: RouteDecision {
                rule: "r".into(),
                reason: "理由".repeat(400),
                primary: hub("a"),
                copies: vec![hub("b")],
                step: 3,
                passed_over: vec![],
                follow_up: None,
            },
            hub_id: "a".into(),
            tags: vec!["sales".into()],
            step: 3,
            status: CaseStatus::Claimed,
            claimed_by: Some("discord:42".into()),
            outcome: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn net(names: &[&str]) -> Network {
        Network {
            hubs: names
                .iter()
                .map(|h| crate::desk::HubInfo {
                    id: h.to_string(),
                    name: format!("hub {h}"),
                    staff: vec![],
                    targets: vec![],
                    from_directory: false,
                })
                .collect(),
            transports: vec![],
            ..Network::default()
        }
    }

    const MORE: &str = "…（続きはスレッドに掲載 / continued in the thread）";

    fn embed_len(e: &Value) -> usize {
        let s = |v: &Value| v.as_str().unwrap_or("").chars().count();
        s(&e["title"])
            + s(&e["description"])
            + s(&e["footer"]["text"])
            + e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| s(&f["name"]) + s(&f["value"]))
                .sum::<usize>()
    }

    #[test]
    fn a_long_summary_continues_in_the_thread_within_embed_limits() {
        let line = "あいうえおかきくけこ".repeat(9);
        let summary: String = (0..100).map(|i| format!("{i:03} {line}\n")).collect();
        let v = post_view(
            &case(&summary),
            "a",
            &net(&["a", "b"]),
            &DeskTexts::shipped(),
        );
        assert!(
            embed_len(&v.embed) <= EMBED_TOTAL,
            "{}",
            embed_len(&v.embed)
        );
        assert!(v.embed["description"].as_str().unwrap().chars().count() <= EMBED_DESCRIPTION);
        assert!(v.embed["description"]
            .as_str()
            .unwrap()
            .contains("continued in the thread"));
        assert!(v.embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["value"].as_str().unwrap().chars().count() <= FIELD_VALUE));
        assert!(!v.overflow.is_empty() && v.overflow.iter().all(|p| p.chars().count() <= 1900));
        let all = format!(
            "{}\n{}",
            v.embed["description"].as_str().unwrap(),
            v.overflow.join("\n")
        );
        for i in [0, 50, 99] {
            assert!(
                all.contains(&format!("{i:03} ")),
                "line {i} is shown somewhere"
            );
        }
        // The working post has the staff buttons; a copy has none.
        let ids: Vec<&str> = v.components[0]["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["custom_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["s:release:7", "s:fwd:7", "s:adv:7", "s:close:7"]);
        assert!(post_view(
            &case("short"),
            "b",
            &net(&["a", "b"]),
            &DeskTexts::shipped()
        )
        .components
        .is_empty());
        // The owner's headline cannot ping or format.
        let title = v.embed["title"].as_str().unwrap();
        assert!(
            !title.contains("@everyone") && title.contains("\\*テスト\\*"),
            "{title}"
        );
    }

    #[test]
    fn the_intro_goes_in_the_post_and_only_its_excess_in_the_thread() {
        let head = "<@&1> 新しい案件です (new case): **C-7**";
        let (content, rest) = post_content(head, "返信は /reply で。\n理由: r\n", MORE);
        assert_eq!(content, format!("{head}\n返信は /reply で。\n理由: r"));
        assert!(rest.is_empty());

        // Many passed-over rules: the content stays within Discord's limit
        // and says where the rest is; nothing is lost.
        let intro: String = (0..60)
            .map(|i| format!("・見送ったルール `rule-{i:02}`: {}\n", "条件".repeat(20)))
            .collect();
        let (content, rest) = post_content(head, &intro, MORE);
        assert!(
            content.chars().count() <= render::MAX_CONTENT,
            "{}",
            content.chars().count()
        );
        assert!(content.starts_with(head) && content.contains("continued in the thread"));
        assert!(!rest.is_empty() && rest.iter().all(|p| p.chars().count() <= 1900));
        let all = format!("{content}\n{}", rest.join("\n"));
        for i in 0..60 {
            assert!(
                all.contains(&format!("`rule-{i:02}`")),
                "rule {i} is shown somewhere"
            );
        }
    }

    #[test]
    fn a_short_summary_stays_in_the_embed() {
        let v = post_view(
            &case("【企業情報シート】\n会社名：テスト"),
            "a",
            &net(&["a"]),
            &DeskTexts::shipped(),
        );
        assert_eq!(v.embed["description"], "【企業情報シート】\n会社名：テスト");
        assert!(v.overflow.is_empty());
    }
}
