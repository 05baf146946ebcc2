//! `madoguchi my-data` and `madoguchi forget`: an owner's data, shown or
//! deleted.

use super::{open_existing, Common};
use anyhow::{Context, Result};
use clap::Args;
use madoguchi::domain::ids::UserKey;
use madoguchi::escape;
use std::path::PathBuf;

#[derive(Args)]
pub struct MyDataArgs {
    #[command(flatten)]
    pub common: Common,
    /// The owner key, e.g. terminal:local or discord:123456.
    #[arg(long, default_value = "terminal:local")]
    pub user: String,
}

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub common: Common,
    /// The owner whose data is deleted, e.g. terminal:local or
    /// discord:123456. Required: a default would delete the terminal
    /// owner's data when the option was forgotten.
    #[arg(long)]
    pub user: String,
    /// Confirm the deletion (without it, nothing is deleted).
    #[arg(long)]
    pub yes: bool,
    /// The local inbox whose copies of the owner's cases become tombstones.
    #[arg(long, default_value = "inbox")]
    pub inbox: PathBuf,
}

pub async fn my_data(args: MyDataArgs) -> Result<u8> {
    let MyDataArgs { common, user } = args;
    let store = open_existing(&common.db).await?;
    let user = UserKey::parse(&user).context("invalid --user")?;
    let export = madoguchi::privacy::export(store.as_ref(), &user).await?;
    // serde_json writes C0 controls as escapes but not C1 controls
    // or bidi overrides; those are escaped too, so the JSON stays
    // valid and exact and the terminal shows it as it is.
    println!(
        "{}",
        escape::json_for_terminal(&serde_json::to_string_pretty(&export)?)
    );
    Ok(0)
}

/// `forget`'s exit code when the database holds nothing for the owner
/// (documented in the README).
pub const NOTHING_STORED: u8 = 3;

pub async fn forget(args: ForgetArgs) -> Result<u8> {
    let ForgetArgs {
        common,
        user,
        yes,
        inbox,
    } = args;
    let store = open_existing(&common.db).await?;
    let user = UserKey::parse(&user).context("invalid --user")?;
    // An id that holds nothing is most likely a mistyped one: saying
    // "deleted 0" with success would let the person believe the owner's
    // data is gone.
    let stored = madoguchi::privacy::export(store.as_ref(), &user).await?;
    if stored.sessions.is_empty()
        && stored.cases.is_empty()
        && stored.consents.is_empty()
        && stored.follow_ups.is_empty()
    {
        eprintln!(
            "nothing is stored for {user}, so nothing was deleted: check --user; owner ids look like terminal:local (the terminal), discord:123456789012345678 (the Discord user id) or slack:U0123ABCD (the Slack user id)"
        );
        return Ok(NOTHING_STORED);
    }
    if !yes {
        println!("this deletes every answer, session and case content of {user}; consent records are kept for 3 years as the law requires.\nrun again with --yes to delete.");
        return Ok(2);
    }
    let (r, files) = madoguchi::delivery::forget_with_inbox(store.as_ref(), &user, &inbox, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            madoguchi::delivery::ForgetError::Store(e) => anyhow::Error::new(e)
                .context("the data could not be deleted; nothing was changed, run the command again"),
            e @ madoguchi::delivery::ForgetError::Inbox { .. } => anyhow::anyhow!(
                "{e}: fix the folder's permissions and run `madoguchi forget --user {user} --yes` again"
            ),
        })?;
    println!(
        "deleted {} session(s), {} answer(s), the contents of {} case(s); replaced {} inbox file(s) with tombstones; kept {} consent record(s) as the law requires",
        r.sessions, r.answers, r.cases, files, r.consent_records_kept
    );
    Ok(0)
}
