//! Smoke tests for the Discord stand-in, driving a real serenity 0.12.5 `Client`. They are
//! also the usage examples referred to by README.md (compiled and run with the `it` tests).

use std::sync::{Arc, Mutex};

use super::{DiscordStandIn, RunningClient};
use serde_json::json;
use serenity::all::{
    ButtonStyle, ChannelId, Command, CommandOptionType, ComponentInteractionDataKind, Context,
    CreateActionRow, CreateButton, CreateCommand, CreateCommandOption, CreateInputText,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, CreateModal, CreateSelectMenu, CreateSelectMenuKind, CreateSelectMenuOption,
    CreateThread, EditInteractionResponse, EventHandler, GatewayIntents, HttpError, InputTextStyle,
    Interaction, Message, MessageId, Nonce, Ready,
};

const GUILD: u64 = 500_000_000_000_000_001;
const STAFF: u64 = 500_000_000_000_000_002;
const OWNER: u64 = 400_000_000_000_000_001;
const ROLE: u64 = 500_000_000_000_000_003;

// ---------------------------------------------------------------- (1) DM ping → pong

struct Pong;

#[serenity::async_trait]
impl EventHandler for Pong {
    async fn message(&self, ctx: Context, msg: Message) {
        if !msg.author.bot && msg.content == "ping" {
            msg.channel_id
                .say(&ctx.http, "pong")
                .await
                .expect("say pong");
        }
    }
}

#[tokio::test]
async fn dm_ping_gets_pong() {
    let discord = DiscordStandIn::start().await;
    let client = discord
        .client_builder(GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT)
        .event_handler(Pong)
        .await
        .expect("client");
    let bot = RunningClient::spawn(client);
    discord.wait_ready().await;

    discord.user_sends_dm(OWNER, "ping").await;
    let dm = discord.dm_channel_of(OWNER).expect("dm channel");
    let call = discord
        .wait_for_call(|c| c.is("POST", &format!("/channels/{dm}/messages")))
        .await;
    assert_eq!(call.json()["content"], "pong");
    assert_eq!(call.status, 200);

    let msgs = discord.messages_in(dm);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["content"], "pong");
    assert_eq!(msgs[1]["author"]["id"], discord.bot_user_id().to_string());

    // serenity asked for GET /gateway with v=10 JSON frames.
    assert!(discord.calls().iter().any(|c| c.is("GET", "/gateway")));
    assert_eq!(
        discord.gateway_urls()[0],
        format!("{}?v=10", discord.gateway_url())
    );
    assert_eq!(discord.identifies(), 1);

    bot.shutdown().await.expect("clean shutdown");
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

// ---------------------------------------------------------------- (2) slash command + button

struct Consult;

#[serenity::async_trait]
impl EventHandler for Consult {
    async fn ready(&self, ctx: Context, _ready: Ready) {
        let cmd = CreateCommand::new("consult")
            .description("Start a consultation")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "topic", "What about")
                    .required(true),
            );
        Command::set_global_commands(&ctx.http, vec![cmd])
            .await
            .expect("register commands");
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(cmd) if cmd.data.name == "consult" => {
                let topic = cmd.data.options[0].value.as_str().unwrap_or("").to_string();
                let reply = CreateInteractionResponseMessage::new()
                    .content(format!("topic: {topic} ({})", cmd.locale))
                    .components(vec![CreateActionRow::Buttons(vec![CreateButton::new(
                        "confirm",
                    )
                    .label("Confirm")
                    .style(ButtonStyle::Success)])]);
                cmd.create_response(&ctx.http, CreateInteractionResponse::Message(reply))
                    .await
                    .expect("respond to command");
            }
            Interaction::Component(comp) if comp.data.custom_id == "confirm" => {
                let update = CreateInteractionResponseMessage::new()
                    .content("confirmed")
                    .components(vec![]);
                comp.create_response(&ctx.http, CreateInteractionResponse::UpdateMessage(update))
                    .await
                    .expect("update message");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn slash_command_then_button_update() {
    let discord = DiscordStandIn::start().await;
    discord.add_guild(GUILD, "HQ");
    discord.add_text_channel(GUILD, STAFF, "staff");
    discord.add_member(GUILD, OWNER, "owner", &[ROLE]);
    let client = discord
        .client_builder(GatewayIntents::GUILDS)
        .event_handler(Consult)
        .await
        .unwrap();
    let bot = RunningClient::spawn(client);
    discord.wait_ready().await;
    let app = discord.application_id();
    discord
        .wait_for_call(|c| c.is("PUT", &format!("/applications/{app}/commands")) && c.ok())
        .await;

    let iid = discord
        .user_runs_slash_command(
            Some(GUILD),
            STAFF,
            OWNER,
            "consult",
            json!({ "topic": "tax" }),
            "ja",
        )
        .await;
    discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
        .await;
    let responses = discord.interaction_responses(iid);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0]["type"], 4);
    let original = discord.original_response(iid).expect("original message");
    assert_eq!(original["content"], "topic: tax (ja)");
    let mid: u64 = original["id"].as_str().unwrap().parse().unwrap();

    let press = discord
        .user_presses_button(STAFF, mid, OWNER, Some(GUILD), "confirm", "ja")
        .await;
    discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{press}/")))
        .await;
    assert_eq!(discord.interaction_responses(press)[0]["type"], 7);
    let msgs = discord.messages_in(STAFF);
    assert_eq!(msgs.len(), 1, "UpdateMessage edits in place");
    assert_eq!(msgs[0]["content"], "confirmed");
    assert_eq!(msgs[0]["components"], json!([]));

    bot.shutdown().await.unwrap();
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

// ---------------------------------------------------------------- (3) gateway drop → RESUME

#[tokio::test]
async fn dropped_gateway_resumes_and_replays() {
    let discord = DiscordStandIn::start().await;
    let client = discord
        .client_builder(GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT)
        .event_handler(Pong)
        .await
        .unwrap();
    let bot = RunningClient::spawn(client);
    discord.wait_ready().await;
    discord.user_sends_dm(OWNER, "ping").await;
    let dm = discord.dm_channel_of(OWNER).unwrap();
    discord
        .wait_for_call(|c| c.is("POST", &format!("/channels/{dm}/messages")))
        .await;

    // Park the bot's RESUME so the DM below is deterministically sent while it is away.
    discord.hold_resumes();
    discord.disconnect_gateway().await;
    discord.wait_gateway(|g| g.parked_resumes == 1).await;
    assert!(!discord.is_connected());
    discord.user_sends_dm(OWNER, "ping").await; // buffered
    discord.release_resumes(); // replayed, then RESUMED
    discord
        .wait_for(|calls| {
            calls
                .iter()
                .filter(|c| c.is("POST", &format!("/channels/{dm}/messages")))
                .count()
                == 2
        })
        .await;
    discord.wait_ready().await;
    let stats = discord.gateway_stats();
    assert!(stats.replayed >= 1, "{stats:?}");
    assert!(discord.resumes() >= 1);
    assert_eq!(discord.identifies(), 1, "a RESUME, not a new IDENTIFY");
    assert!(discord.gateway_connections() >= 2);

    // op 7 RECONNECT works the same way.
    discord.send_reconnect().await;
    discord
        .wait_gateway(|g| g.resumes == 2 && g.connected)
        .await;
    discord.user_sends_dm(OWNER, "ping").await;
    discord
        .wait_for(|calls| {
            calls
                .iter()
                .filter(|c| c.is("POST", &format!("/channels/{dm}/messages")))
                .count()
                == 3
        })
        .await;
    assert_eq!(discord.identifies(), 1);

    bot.shutdown().await.unwrap();
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

// ---------------------------------------------------------------- (4) 429 / 500 injection

/// Replies "pong", retrying on 429/5xx; records every failed status it saw.
struct RetryingPong(Arc<Mutex<Vec<u16>>>);

#[serenity::async_trait]
impl EventHandler for RetryingPong {
    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot || msg.content != "ping" {
            return;
        }
        for _ in 0..5 {
            match msg.channel_id.say(&ctx.http, "pong").await {
                Ok(_) => return,
                Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(resp))) => {
                    self.0.lock().unwrap().push(resp.status_code.as_u16());
                    // Back-off is the bot's job: serenity's ratelimiter is off with a proxy.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
    }
}

#[tokio::test]
async fn rate_limit_and_server_error_reach_the_bot() {
    let discord = DiscordStandIn::start().await;
    let seen = Arc::new(Mutex::new(vec![]));
    let client = discord
        .client_builder(GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT)
        .event_handler(RetryingPong(seen.clone()))
        .await
        .unwrap();
    let bot = RunningClient::spawn(client);
    discord.wait_ready().await;

    discord.fail_next(
        "POST",
        "/channels/",
        429,
        DiscordStandIn::rate_limit_body(0.05, false),
        1,
    );
    discord.fail_next(
        "POST",
        "/channels/",
        500,
        json!({ "message": "500: Internal Server Error", "code": 0 }),
        1,
    );
    discord.user_sends_dm(OWNER, "ping").await;
    let dm = discord.dm_channel_of(OWNER).unwrap();
    let path = format!("/channels/{dm}/messages");
    let calls = discord
        .wait_for(|calls| calls.iter().any(|c| c.is("POST", &path) && c.status == 200))
        .await;
    let statuses: Vec<u16> = calls
        .iter()
        .filter(|c| c.is("POST", &path))
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![429, 500, 200]);
    assert!(calls
        .iter()
        .filter(|c| c.is("POST", &path))
        .take(2)
        .all(|c| c.injected));
    assert_eq!(*seen.lock().unwrap(), vec![429, 500]);
    assert_eq!(
        discord.messages_in(dm).len(),
        2,
        "only the successful pong was stored"
    );

    bot.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- (5) modal, select, defer, followups

struct Intake;

#[serenity::async_trait]
impl EventHandler for Intake {
    async fn ready(&self, ctx: Context, _ready: Ready) {
        Command::set_global_commands(
            &ctx.http,
            vec![CreateCommand::new("intake").description("Open the intake form")],
        )
        .await
        .expect("global commands");
        serenity::all::GuildId::new(GUILD)
            .set_commands(
                &ctx.http,
                vec![CreateCommand::new("staff").description("Staff only")],
            )
            .await
            .expect("guild commands");
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(cmd) if cmd.data.name == "intake" => {
                let modal = CreateModal::new("intake_form", "Intake").components(vec![
                    CreateActionRow::InputText(CreateInputText::new(
                        InputTextStyle::Short,
                        "Company",
                        "company",
                    )),
                    CreateActionRow::InputText(
                        CreateInputText::new(InputTextStyle::Paragraph, "Details", "details")
                            .required(false),
                    ),
                ]);
                cmd.create_response(&ctx.http, CreateInteractionResponse::Modal(modal))
                    .await
                    .expect("modal");
            }
            Interaction::Modal(modal) if modal.data.custom_id == "intake_form" => {
                let company = modal
                    .data
                    .components
                    .iter()
                    .flat_map(|row| row.components.iter())
                    .find_map(|c| match c {
                        serenity::all::ActionRowComponent::InputText(t)
                            if t.custom_id == "company" =>
                        {
                            t.value.clone()
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let select = CreateSelectMenu::new(
                    "region",
                    CreateSelectMenuKind::String {
                        options: vec![
                            CreateSelectMenuOption::new("Tokyo", "tokyo"),
                            CreateSelectMenuOption::new("Osaka", "osaka"),
                        ],
                    },
                );
                let msg = CreateInteractionResponseMessage::new()
                    .content(format!("Thanks {company}, pick a region"))
                    .ephemeral(true)
                    .components(vec![CreateActionRow::SelectMenu(select)]);
                modal
                    .create_response(&ctx.http, CreateInteractionResponse::Message(msg))
                    .await
                    .expect("reply");
            }
            Interaction::Component(comp) if comp.data.custom_id == "region" => {
                let ComponentInteractionDataKind::StringSelect { values } = &comp.data.kind else {
                    return;
                };
                comp.create_response(&ctx.http, CreateInteractionResponse::Acknowledge)
                    .await
                    .expect("ack");
                comp.edit_response(
                    &ctx.http,
                    EditInteractionResponse::new()
                        .content(format!("region: {}", values[0]))
                        .components(vec![]),
                )
                .await
                .expect("edit original");
                comp.create_followup(
                    &ctx.http,
                    CreateInteractionResponseFollowup::new()
                        .content("We will contact you")
                        .ephemeral(true),
                )
                .await
                .expect("followup");
            }
            Interaction::Command(cmd) if cmd.data.name == "staff" => {
                cmd.defer_ephemeral(&ctx.http).await.expect("defer");
                cmd.create_followup(
                    &ctx.http,
                    CreateInteractionResponseFollowup::new().content("done"),
                )
                .await
                .expect("followup after defer");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn modal_select_defer_and_followups() {
    let discord = DiscordStandIn::start().await;
    discord.add_guild(GUILD, "HQ");
    discord.add_text_channel(GUILD, STAFF, "staff");
    discord.add_member(GUILD, OWNER, "owner", &[]);
    let client = discord
        .client_builder(GatewayIntents::GUILDS)
        .event_handler(Intake)
        .await
        .unwrap();
    let bot = RunningClient::spawn(client);
    discord.wait_ready().await;
    let app = discord.application_id();
    discord
        .wait_for_call(|c| {
            c.is(
                "PUT",
                &format!("/applications/{app}/guilds/{GUILD}/commands"),
            ) && c.ok()
        })
        .await;
    discord
        .wait_for_call(|c| c.is("PUT", &format!("/applications/{app}/commands")) && c.ok())
        .await;
    assert_eq!(discord.commands(Some(GUILD))[0]["name"], "staff");

    // Slash command in DM → modal.
    let cmd = discord
        .user_runs_slash_command(None, 0, OWNER, "intake", json!(null), "ja")
        .await;
    discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{cmd}/")))
        .await;
    assert_eq!(discord.interaction_responses(cmd)[0]["type"], 9);

    // Modal submit → ephemeral message with a select menu.
    let dm = discord.dm_channel_of(OWNER).unwrap();
    let submit = discord
        .user_submits_modal(dm, OWNER, None, "intake_form", &[("company", "Acme")], "ja")
        .await;
    discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{submit}/")))
        .await;
    let prompt = discord.original_response(submit).expect("prompt");
    assert_eq!(prompt["content"], "Thanks Acme, pick a region");
    assert_eq!(
        prompt["flags"].as_u64().unwrap() & super::FLAG_EPHEMERAL,
        super::FLAG_EPHEMERAL
    );
    let prompt_id: u64 = prompt["id"].as_str().unwrap().parse().unwrap();

    // Select → type 6 ack, PATCH @original, ephemeral followup.
    let pick = discord
        .user_selects(dm, prompt_id, OWNER, None, "region", &["osaka"], "ja")
        .await;
    discord
        .wait_for_call(|c| {
            c.is("POST", "/webhooks/")
                && c.path.contains("OnN0YW5kLWlu")
                && c.json()["content"] == "We will contact you"
        })
        .await;
    assert_eq!(discord.interaction_responses(pick)[0]["type"], 6);
    let edited = discord.message(prompt_id).unwrap();
    assert_eq!(edited["content"], "region: osaka");
    assert_eq!(edited["components"], json!([]));
    assert_eq!(discord.followups(pick).len(), 1);

    // Guild command: deferred ephemeral, the first followup replaces the "thinking" message.
    let staff = discord
        .user_runs_slash_command(Some(GUILD), STAFF, OWNER, "staff", json!({}), "en-US")
        .await;
    discord
        .wait_for_call(|c| c.is("POST", "/webhooks/") && c.json()["content"] == "done")
        .await;
    assert_eq!(discord.interaction_responses(staff)[0]["type"], 5);
    let msgs = discord.messages_in(STAFF);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["content"], "done");
    assert_eq!(msgs[0]["flags"].as_u64().unwrap(), super::FLAG_EPHEMERAL);

    bot.shutdown().await.unwrap();
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

// ---------------------------------------------------------------- (6) REST semantics via serenity Http

#[tokio::test]
async fn rest_nonce_threads_members_and_errors() {
    let discord = DiscordStandIn::start().await;
    discord.add_guild(GUILD, "HQ");
    discord.add_text_channel(GUILD, STAFF, "staff");
    discord.add_member(GUILD, OWNER, "owner", &[ROLE]);
    let http = discord.http();
    let staff = ChannelId::new(STAFF);

    // enforce_nonce: the same nonce returns the original message.
    let send = || {
        staff.send_message(
            &http,
            CreateMessage::new()
                .content("case #1")
                .nonce(Nonce::String("case-1".into()))
                .enforce_nonce(true),
        )
    };
    let first = send().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(discord.messages_in(STAFF).len(), 1);

    // A response lost after Discord acted: the message exists although the
    // caller saw a 502, and sending again with the same nonce returns it.
    discord.fail_next_after_processing(
        "POST",
        &format!("/channels/{STAFF}/messages"),
        Some("case #2"),
        502,
        json!({ "message": "502: Bad Gateway", "code": 0 }),
        1,
    );
    let send2 = || {
        staff.send_message(
            &http,
            CreateMessage::new()
                .content("case #2")
                .nonce(Nonce::String("case-2".into()))
                .enforce_nonce(true),
        )
    };
    let lost = send2().await.unwrap_err();
    assert!(
        matches!(&lost, serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) if r.status_code.as_u16() == 502),
        "{lost:?}"
    );
    assert_eq!(
        discord.messages_in(STAFF).len(),
        2,
        "carried out despite the 502"
    );
    let found = send2().await.unwrap();
    assert_eq!(discord.messages_in(STAFF).len(), 2);
    assert_eq!(discord.messages_in(STAFF)[1]["id"], found.id.to_string());

    // Thread from a message: the thread id is the message id.
    let thread = staff
        .create_thread_from_message(&http, first.id, CreateThread::new("case-1"))
        .await
        .unwrap();
    assert_eq!(thread.id.get(), first.id.get());
    assert_eq!(thread.kind, serenity::all::ChannelType::PublicThread);
    thread.id.say(&http, "details here").await.unwrap();
    assert_eq!(
        discord.messages_in(thread.id.get())[0]["content"],
        "details here"
    );
    let err = staff
        .create_thread_from_message(&http, first.id, CreateThread::new("dup"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) if r.error.code == 160004),
        "{err:?}"
    );

    // Edits, allowed_mentions.
    let edited = staff
        .edit_message(
            &http,
            first.id,
            serenity::all::EditMessage::new().content("case #1 (updated)"),
        )
        .await
        .unwrap();
    assert!(edited.edited_timestamp.is_some());
    let quiet = staff
        .send_message(
            &http,
            CreateMessage::new()
                .content(format!("<@{OWNER}> new case"))
                .allowed_mentions(serenity::all::CreateAllowedMentions::new()),
        )
        .await
        .unwrap();
    assert!(quiet.mentions.is_empty());
    let call = discord
        .calls()
        .into_iter()
        .rev()
        .find(|c| c.is("POST", &format!("/channels/{STAFF}/messages")))
        .unwrap();
    assert_eq!(call.json()["allowed_mentions"]["parse"], json!([]));

    // Multipart uploads: payload_json is parsed, file names recorded.
    let report = staff
        .send_files(
            &http,
            [serenity::all::CreateAttachment::bytes(
                b"hello".to_vec(),
                "report.txt",
            )],
            CreateMessage::new().content("report"),
        )
        .await
        .unwrap();
    assert_eq!(report.attachments[0].filename, "report.txt");
    let upload = discord
        .calls()
        .into_iter()
        .rev()
        .find(|c| c.is("POST", &format!("/channels/{STAFF}/messages")))
        .unwrap();
    assert_eq!(
        (upload.files.clone(), upload.json()["content"].clone()),
        (vec!["report.txt".to_string()], json!("report"))
    );

    // Members, users, application.
    let member = http.get_member(GUILD.into(), OWNER.into()).await.unwrap();
    assert_eq!(member.roles, vec![serenity::all::RoleId::new(ROLE)]);
    let missing = http
        .get_member(GUILD.into(), 42u64.into())
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) if r.error.code == 10007)
    );
    assert_eq!(
        http.get_current_user().await.unwrap().id.get(),
        discord.bot_user_id()
    );
    assert_eq!(
        http.get_current_application_info().await.unwrap().id.get(),
        discord.application_id()
    );
    let dm = serenity::all::UserId::new(OWNER)
        .create_dm_channel(&http)
        .await
        .unwrap();
    assert_eq!(discord.dm_channel_of(OWNER), Some(dm.id.get()));

    // Discord errors: unknown channel, empty message, unknown endpoint (recorded).
    let unknown = ChannelId::new(7).say(&http, "x").await.unwrap_err();
    assert!(
        matches!(&unknown, serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) if r.error.code == 10003)
    );
    let empty = http
        .send_message(staff, vec![], &json!({ "content": "" }))
        .await
        .unwrap_err();
    assert!(
        matches!(&empty, serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) if r.error.code == 50006)
    );
    let _ = http.get_pins(staff).await.unwrap_err();
    let pins = discord.wait_for_call(|c| c.path.ends_with("/pins")).await;
    assert_eq!(pins.status, 404);
    let _ = MessageId::new(1);
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

// ---------------------------------------------------------------- (7) intents, heartbeats, raw 429 headers

struct Echo(tokio::sync::mpsc::UnboundedSender<String>);

#[serenity::async_trait]
impl EventHandler for Echo {
    async fn message(&self, _ctx: Context, msg: Message) {
        if !msg.author.bot {
            let _ = self.0.send(msg.content);
        }
    }
}

#[tokio::test]
async fn message_content_intent_and_heartbeats() {
    let discord = DiscordStandIn::start_with(super::Options {
        heartbeat_interval_ms: 200,
        ..Default::default()
    })
    .await;
    discord.add_guild(GUILD, "HQ");
    discord.add_text_channel(GUILD, STAFF, "staff");
    discord.add_member(GUILD, OWNER, "owner", &[]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // No MESSAGE_CONTENT: guild message content arrives blank unless the bot is mentioned.
    let client = discord
        .client_builder(GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES)
        .event_handler(Echo(tx))
        .await
        .unwrap();
    let bot = RunningClient::spawn(client);
    discord.wait_ready().await;
    let bot_id = discord.bot_user_id();
    discord
        .user_sends_guild_message(GUILD, STAFF, OWNER, "secret")
        .await;
    discord
        .user_sends_guild_message(GUILD, STAFF, OWNER, &format!("<@{bot_id}> hello"))
        .await;
    let ten = std::time::Duration::from_secs(10);
    assert_eq!(
        tokio::time::timeout(ten, rx.recv()).await.unwrap().unwrap(),
        ""
    );
    assert_eq!(
        tokio::time::timeout(ten, rx.recv()).await.unwrap().unwrap(),
        format!("<@{bot_id}> hello")
    );
    assert_eq!(
        discord.identify_payloads()[0]["intents"].as_u64().unwrap(),
        (GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES).bits()
    );

    discord.wait_gateway(|g| g.heartbeats >= 2).await;

    // World changes while connected are dispatched (and checked against serenity's models).
    discord.add_text_channel(GUILD, 777, "intake");
    discord.add_member(GUILD, 778, "newcomer", &[ROLE]); // GUILD_MEMBER_ADD needs GUILD_MEMBERS: filtered
    let note = bot
        .http
        .send_message(ChannelId::new(777), vec![], &json!({ "content": "case" }))
        .await
        .unwrap();
    ChannelId::new(777)
        .create_thread_from_message(&bot.http, note.id, CreateThread::new("case"))
        .await
        .unwrap();
    // A member starts a thread on another message in their client: same id
    // as the message, announced to the bot (which has not joined it), and
    // the bot's own attempt then gets 160004.
    let other = bot
        .http
        .send_message(ChannelId::new(777), vec![], &json!({ "content": "case 2" }))
        .await
        .unwrap();
    let by_hand = discord
        .user_starts_thread(GUILD, 777, other.id.get(), OWNER, "by hand")
        .await;
    assert_eq!(by_hand, other.id.get());
    let started = discord
        .dispatched_events()
        .into_iter()
        .rev()
        .find(|(t, d)| {
            t == "THREAD_CREATE" && d["id"].as_str().and_then(|s| s.parse().ok()) == Some(by_hand)
        })
        .expect("THREAD_CREATE for the member's thread")
        .1;
    assert_eq!(
        (
            &started["owner_id"],
            started.get("member"),
            &started["newly_created"]
        ),
        (&json!(OWNER.to_string()), None, &json!(true))
    );
    let err = ChannelId::new(777)
        .create_thread_from_message(&bot.http, other.id, CreateThread::new("again"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) if r.error.code == 160004),
        "{err:?}"
    );
    let events: Vec<String> = discord
        .dispatched_events()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for t in [
        "READY",
        "GUILD_CREATE",
        "CHANNEL_CREATE",
        "THREAD_CREATE",
        "MESSAGE_CREATE",
    ] {
        assert!(events.iter().any(|e| e == t), "{t} missing from {events:?}");
    }
    assert!(!events.iter().any(|e| e == "GUILD_MEMBER_ADD"));
    bot.shutdown().await.unwrap();
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

async fn raw_http(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.to_ascii_lowercase()
}

#[tokio::test]
async fn raw_429_headers_auth_and_unknown_routes() {
    let discord = DiscordStandIn::start().await;
    discord.add_guild(GUILD, "HQ");
    discord.add_text_channel(GUILD, STAFF, "staff");
    discord.fail_next(
        "POST",
        "/channels/",
        429,
        DiscordStandIn::rate_limit_body(0.25, true),
        1,
    );
    let body = r#"{"content":"x"}"#;
    let req = format!(
        "POST /api/v10/channels/{STAFF}/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bot {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        discord.bot_token(),
        body.len()
    );
    let resp = raw_http(&discord.http_base(), &req).await;
    assert!(resp.starts_with("http/1.1 429"), "{resp}");
    for h in [
        "retry-after: 1",
        "x-ratelimit-remaining: 0",
        "x-ratelimit-global: true",
        "x-ratelimit-scope: global",
        "x-ratelimit-reset-after: 0.250",
        "\"retry_after\":0.25",
    ] {
        assert!(resp.contains(h), "missing {h} in {resp}");
    }
    let resp = raw_http(
        &discord.http_base(),
        &req.replace(&discord.bot_token(), "nope"),
    )
    .await;
    assert!(resp.starts_with("http/1.1 401"), "{resp}");
    let get = format!("GET /api/v10/nothing/here HTTP/1.1\r\nhost: x\r\nauthorization: Bot {}\r\nconnection: close\r\n\r\n", discord.bot_token());
    let resp = raw_http(&discord.http_base(), &get).await;
    assert!(
        resp.starts_with("http/1.1 404") && resp.contains("404: not found"),
        "{resp}"
    );
    let calls = discord.calls();
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![429, 401, 404]
    );
    assert_eq!(calls[2].path, "/nothing/here");
}

// ---------------------------------------------------------------- (8) INVALID_SESSION → re-IDENTIFY

#[tokio::test]
async fn invalid_session_makes_serenity_reidentify() {
    let discord = DiscordStandIn::start().await;
    discord.set_wait_timeout(std::time::Duration::from_secs(30)); // serenity waits 5 s between IDENTIFYs
    let client = discord
        .client_builder(GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT)
        .event_handler(Pong)
        .await
        .unwrap();
    let bot = RunningClient::spawn(client);
    discord.wait_ready().await;
    discord.invalidate_session(false).await;
    discord
        .wait_gateway(|g| g.identifies == 2 && g.connected)
        .await;
    discord.user_sends_dm(OWNER, "ping").await;
    let dm = discord.dm_channel_of(OWNER).unwrap();
    discord
        .wait_for_call(|c| c.is("POST", &format!("/channels/{dm}/messages")))
        .await;
    bot.shutdown().await.unwrap();
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

// ---------------------------------------------------------------- model helpers

mod model {
    use discord_standin::model::*;
    use serde_json::json;

    #[test]
    fn base64_matches_discord_token_prefix() {
        // "123" -> "MTIz", the familiar start of a Discord token.
        assert_eq!(base64_nopad(b"123"), "MTIz");
        assert_eq!(base64_nopad(b"12"), "MTI");
        assert!(serenity::utils::validate_token(fake_token(1)).is_ok());
    }

    #[test]
    fn broken_dispatches_are_caught() {
        assert!(check_event("MESSAGE_CREATE", &json!({ "id": "1" })).is_err());
        assert!(check_event("RESUMED", &json!({})).is_ok());
    }

    #[test]
    fn mentions_are_parsed_and_filtered() {
        let (u, r, e) = parse_mentions("hi <@1> <@!2> <@&3> @everyone");
        assert_eq!((u.clone(), r.clone(), e), (vec![1, 2], vec![3], true));
        let (u, r, e) =
            apply_allowed_mentions(Some(&json!({"parse": [], "users": ["2"]})), u, r, e);
        assert_eq!((u, r, e), (vec![2], vec![], false));
    }
}
