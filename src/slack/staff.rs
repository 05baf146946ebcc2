//! Hub staff on Slack: the buttons of a case post (claim, release,
//! advance, close, forward) decided by the platform-neutral desk
//! ([`crate::desk`], applied by [`crate::casework`]). The adapter only
//! resolves who is acting (`slack:U…` and whether they are in the hub's
//! staff user group), asks, and shows the result: refusals as an
//! ephemeral message to the person who pressed, notes in the case's
//! thread, the acting member's confirmation, messages for the owner in
//! their DM, and the refreshed post.

use super::events::{Action, ViewSubmit};
use super::hub::update_body;
use super::render::plain;
use super::Bot;
use crate::casework::{self, Outcome};
use crate::desk::{self, Actor, DeskTexts, Medium, Network, StaffId, StaffSpec, Text};
use crate::domain::ids::CaseId;
use crate::script::Lang;
use serde_json::json;

/// How desk texts show their arguments in Slack mrkdwn.
pub struct SlackMedium;

impl Medium for SlackMedium {
    fn escape(&self, s: &str) -> String {
        crate::escape::slack(s)
    }
    fn actor(&self, id: &str) -> String {
        match id.strip_prefix("slack:") {
            Some(u) if u.chars().all(|c| c.is_ascii_alphanumeric()) => format!("<@{u}>"),
            _ => crate::escape::slack(id),
        }
    }
    fn group(&self, platform: &str, id: &str) -> String {
        if platform == "slack" && id.chars().all(|c| c.is_ascii_alphanumeric()) {
            format!("<!subteam^{id}>")
        } else {
            crate::escape::slack(&format!("{platform}:{id}"))
        }
    }
}

/// Staff texts are bilingual in one line (Japanese first, as the hubs'
/// shipped texts are); the owner's follow the owner's consultation.
pub(super) const STAFF_LANG: Lang = Lang::Ja;

impl Bot {
    fn texts(&self) -> &DeskTexts {
        &self.texts
    }

    pub(super) fn network(&self) -> Network {
        let mut n = Network::from_bundle(&self.runner.bundle());
        n.transports = self.runner.config().transports.clone();
        n
    }

    pub(super) fn render_text(&self, lang: Lang, t: &Text) -> String {
        self.texts()
            .render(lang, t, &SlackMedium)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "a desk text does not render");
                t.key.clone()
            })
    }

    /// Who is acting: their identity and, for each Slack user group among
    /// the hub's staff, whether they are in it (`usergroups.users.list`).
    pub(super) async fn actor(
        &self,
        network: &Network,
        hub: Option<&str>,
        user: &str,
    ) -> Option<Actor> {
        let id = StaffId::new("slack", user).ok()?;
        let mut groups = Vec::new();
        let specs = hub
            .and_then(|h| network.hub(h))
            .map(|h| h.staff.clone())
            .unwrap_or_default();
        for s in specs {
            if let StaffSpec::Group { platform, id: g } = s {
                if platform != "slack" {
                    continue;
                }
                match self
                    .api
                    .get("usergroups.users.list", &[("usergroup", g.clone())])
                    .await
                {
                    Ok(r)
                        if r["users"]
                            .as_array()
                            .is_some_and(|us| us.iter().any(|u| u == user)) =>
                    {
                        groups.push(g)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(group = %g, error = %e, "cannot read a staff user group")
                    }
                }
            }
        }
        Some(Actor { id, groups })
    }

    /// The hub whose post (or the post's thread) `ts` in `channel` is.
    async fn hub_of_post(&self, case: CaseId, channel: &str, ts: &str) -> Option<String> {
        self.store
            .case_posts(case)
            .await
            .ok()?
            .into_iter()
            .find(|p| p.transport == "slack" && p.channel_id == channel && p.message_id == ts)
            .map(|p| p.hub_id)
    }

    /// A press on a case post's button (`s:{action}:{case}`).
    pub(crate) async fn on_staff_action(&self, a: Action) {
        let mut parts = a.action_id.splitn(3, ':').skip(1);
        let (Some(kind), Some(Ok(case))) = (parts.next(), parts.next().map(str::parse::<i64>))
        else {
            return;
        };
        let case = CaseId(case);
        let hub = self.hub_of_post(case, &a.channel, &a.message_ts).await;
        match kind {
            "close" | "fwd" => return self.open_staff_form(&a, kind, case, hub.as_deref()).await,
            _ => {}
        }
        let action = match kind {
            "claim" => desk::Action::Claim,
            "release" => desk::Action::Release,
            "adv" => desk::Action::Advance,
            _ => return,
        };
        self.act(&a.user, &a.channel, case, hub.as_deref(), action)
            .await;
    }

    /// Close asks for the outcome, forward for the hub and the reason, in
    /// a form opened at once (the trigger expires after 3 seconds).
    async fn open_staff_form(&self, a: &Action, kind: &str, case: CaseId, hub: Option<&str>) {
        let meta = format!("{}|{}|{}", a.channel, a.message_ts, hub.unwrap_or(""));
        let reason = |label: &str| {
            json!({
                "type": "input",
                "block_id": "text",
                "label": plain(label, 2000),
                "element": { "type": "plain_text_input", "action_id": "text", "multiline": true, "max_length": 1000 },
            })
        };
        let (title, blocks) = if kind == "close" {
            ("案件を完了 (Close)", vec![reason("結果 (outcome)")])
        } else {
            let network = self.network();
            let options: Vec<_> = network
                .hubs
                .iter()
                .filter(|h| Some(h.id.as_str()) != hub && !h.targets.is_empty())
                .take(100)
                .map(|h| super::render::option(&h.name, &h.id))
                .collect();
            if options.is_empty() {
                return;
            }
            (
                "他の拠点へ (Forward)",
                vec![
                    json!({
                        "type": "input",
                        "block_id": "hub",
                        "label": plain("引き継ぎ先 (to hub)", 2000),
                        "element": { "type": "static_select", "action_id": "hub", "options": options },
                    }),
                    reason("理由 (reason)"),
                ],
            )
        };
        let view = json!({
            "type": "modal",
            "callback_id": format!("s:{kind}:{}", case.0),
            "private_metadata": meta,
            "title": plain(title, 24),
            "submit": plain("OK", 24),
            "blocks": blocks,
        });
        if let Err(e) = self
            .api
            .post(
                "views.open",
                &json!({ "trigger_id": a.trigger_id, "view": view }),
            )
            .await
        {
            tracing::warn!(error = %e, "could not open a staff form");
        }
    }

    /// The close or forward form, submitted.
    pub(crate) async fn on_staff_form(&self, v: ViewSubmit) {
        let values = v.values.clone();
        let mut parts = v.callback_id.splitn(3, ':').skip(1);
        let (Some(kind), Some(Ok(case))) = (parts.next(), parts.next().map(str::parse::<i64>))
        else {
            return;
        };
        let mut meta = v.metadata.splitn(3, '|');
        let channel = meta.next().unwrap_or_default().to_string();
        let _ts = meta.next();
        let hub = meta.next().filter(|h| !h.is_empty()).map(str::to_string);
        let text = values["text"]["text"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let action = match kind {
            "close" => desk::Action::Close { outcome: text },
            "reply" => desk::Action::Reply { text },
            "fwd" => desk::Action::Forward {
                to_hub: values["hub"]["hub"]["selected_option"]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                reason: text,
            },
            _ => return,
        };
        self.act(&v.user, &channel, CaseId(case), hub.as_deref(), action)
            .await;
    }

    /// Decides and applies an action, then shows what it did.
    pub(super) async fn act(
        &self,
        user: &str,
        channel: &str,
        case: CaseId,
        hub: Option<&str>,
        action: desk::Action,
    ) {
        let network = self.network();
        let Some(actor) = self.actor(&network, hub, user).await else {
            return;
        };
        let now = self.runner.clock().now();
        let outcome = match casework::act(
            self.store.as_ref(),
            &network,
            &actor,
            case,
            hub,
            action,
            now,
        )
        .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(case = %case, error = %e, "a staff action failed");
                return self
                    .ephemeral(
                        channel,
                        user,
                        &crate::discord::owner::sorry_text(STAFF_LANG),
                    )
                    .await;
            }
        };
        let (before, fx, applied) = match outcome {
            // Only the person who pressed sees a refusal.
            Outcome::Refused(t) => {
                return self
                    .ephemeral(channel, user, &self.render_text(STAFF_LANG, &t))
                    .await
            }
            Outcome::Done {
                before,
                effects,
                applied,
            } => (before, effects, applied),
        };
        if let Some(r) = &fx.reply {
            self.ephemeral(channel, user, &self.render_text(STAFF_LANG, r))
                .await;
        }
        let posts = self.store.case_posts(case).await.unwrap_or_default();
        // A case forwarded to a hub that already had a copy gets no new post
        // there (a new post mentions the staff itself), so the first note
        // for that hub mentions them: a reply in the thread reaches only the
        // thread's members otherwise. (The relay does the same for a
        // forward decided on another platform, `relay::Body::ping`.)
        let mut to_call = fx.staff_to_call();
        for n in &fx.notes {
            let mut text = self.render_text(STAFF_LANG, &n.text);
            if let Some(i) = to_call.iter().position(|h| *h == n.hub) {
                to_call.swap_remove(i);
                if let Some(staff) = super::hub_staff(&self.runner, &n.hub) {
                    text = format!(
                        "{}{text}",
                        super::notices::mention_prefix(
                            &crate::network::reminders::Mention::StaffRole,
                            &staff
                        )
                    );
                }
            }
            for p in posts
                .iter()
                .filter(|p| p.transport == "slack" && p.hub_id == n.hub)
            {
                let body = json!({
                    "channel": p.channel_id,
                    "thread_ts": p.thread_id.clone().unwrap_or_else(|| p.message_id.clone()),
                    "text": text,
                    "unfurl_links": false,
                    "unfurl_media": false,
                });
                if let Err(e) = self.post_message(&body).await {
                    tracing::warn!(case = %case, error = %e, "could not post a note in the case thread");
                }
            }
        }
        // Notes for a hub whose thread is on another platform.
        match crate::relay::queue_notes_elsewhere(
            self.store.as_ref(),
            &applied.case,
            &fx,
            "slack",
            now,
        )
        .await
        {
            Ok(ids) if !ids.is_empty() => self.wake.notify_one(),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(case = %case, error = %e, "could not queue notes for another platform")
            }
        }
        // Messages for the owner (a reply, a consent request for a
        // forward) go to their DM on their platform through the relay's
        // outbox.
        let ask = match (&fx.consent_ask, applied.request) {
            (Some(a), Some(r)) => Some((r, a)),
            _ => None,
        };
        if !fx.owner.is_empty() || ask.is_some() {
            let what = crate::relay::What {
                owner: true,
                notes: false,
            };
            match crate::relay::queue(self.store.as_ref(), &before.case, &fx, ask, what, now).await
            {
                Ok(_) => self.wake.notify_one(),
                Err(e) => {
                    tracing::warn!(case = %case, error = %e, "could not queue a message for the owner");
                    let key = if let Some((r, _)) = ask {
                        let _ = self
                            .store
                            .decide_forward_request(r, crate::store::ForwardStatus::Withdrawn, now)
                            .await;
                        "error.owner_not_asked"
                    } else {
                        "error.owner_unreachable"
                    };
                    self.ephemeral(
                        channel,
                        user,
                        &self.render_text(STAFF_LANG, &Text::new(key)),
                    )
                    .await;
                }
            }
        }
        if let Some(job) = crate::relay::Refresh::of(&fx) {
            let network = &network;
            for p in posts.iter().filter(|p| p.transport == "slack") {
                let body = update_body(&applied.case, p, &|h| network.hub_name(h));
                if let Err(e) = self.api.post("chat.update", &body).await {
                    tracing::warn!(case = %case, error = %e, "could not refresh a case post");
                }
            }
            // Posts on another platform (a case forwarded between hubs on
            // different platforms) through the relay's outbox.
            let (store, case) = (self.store.as_ref(), &applied.case);
            match crate::relay::queue_refresh(store, case, job, Some("slack"), now).await {
                Ok(ids) if !ids.is_empty() => self.wake.notify_one(),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(case = %case.id, error = %e, "could not queue the refresh of posts on another platform")
                }
            }
        }
    }
}
