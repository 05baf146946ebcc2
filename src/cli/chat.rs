//! `madoguchi chat`: a consultation in the terminal.

use super::{load_checked, open_store, parse_lang, terminal_runner, Common};
use anyhow::{Context, Result};
use clap::Args;
use madoguchi::chat::{run_chat, ChatOptions};
use madoguchi::domain::ids::{Transport, UserKey};
use madoguchi::script::Lang;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub common: Common,
    /// Language of the consultation.
    #[arg(long, default_value = "ja", value_parser = parse_lang)]
    pub lang: Lang,
    /// Continue the consultation left open by an earlier run.
    #[arg(long)]
    pub resume: bool,
    /// Where routed cases are delivered for hubs without a chat channel.
    #[arg(long, default_value = "inbox")]
    pub inbox: PathBuf,
    /// Who is chatting (the owner key becomes terminal:NAME).
    #[arg(long, default_value = "local")]
    pub user: String,
    /// The script to run (its `script:` id).
    #[arg(long, default_value = "first_contact")]
    pub script: String,
    /// Answer the follow-up after a match that is due (step 5); a due
    /// follow-up also comes first without this.
    #[arg(long)]
    pub follow_up: bool,
}

pub async fn chat(args: ChatArgs) -> Result<u8> {
    let ChatArgs {
        common,
        lang,
        resume,
        inbox,
        user,
        script,
        follow_up,
    } = args;
    let bundle = load_checked(&common.dialogs)?;
    let store = open_store(&common.db).await?;
    let runner = terminal_runner(store, bundle, lang, script).await?;
    let user = UserKey::new(Transport::Terminal, &user).context("invalid --user")?;
    let echo = !std::io::stdin().is_terminal();
    let opts = ChatOptions {
        user,
        lang,
        resume,
        inbox,
        echo,
        trial: false,
        follow_up,
    };
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    run_chat(&runner, &opts, stdin, &mut std::io::stdout()).await?;
    // The consultation is saved turn by turn; this only leaves the
    // WAL small for the next run.
    runner
        .store()
        .close()
        .await
        .context("cannot tidy the database after the consultation")?;
    Ok(0)
}
