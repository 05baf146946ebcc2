//! What the bot holds about an owner, in one document they can read.

use crate::domain::ids::UserKey;
use crate::store::{AnswerRecord, CaseRecord, ConsentRow, FollowUp, Store, StoreError};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Export {
    pub user: String,
    pub sessions: Vec<SessionExport>,
    pub cases: Vec<CaseRecord>,
    pub consents: Vec<ConsentRow>,
    /// Follow-ups after a match (step 5): when each was or will be
    /// offered, and how it ended.
    pub follow_ups: Vec<FollowUp>,
}

#[derive(Debug, Serialize)]
pub struct SessionExport {
    pub id: String,
    pub status: &'static str,
    pub script_version: String,
    pub answers: Vec<AnswerRecord>,
}

pub async fn export(store: &dyn Store, user: &UserKey) -> Result<Export, StoreError> {
    let mut sessions = Vec::new();
    for s in store.sessions_of_user(user).await? {
        sessions.push(SessionExport {
            id: s.id.to_string(),
            status: s.status.name(),
            script_version: s.version,
            answers: store.answers(s.id).await?,
        });
    }
    let cases = store.cases_of_user(user).await?;
    Ok(Export {
        user: user.to_string(),
        sessions,
        cases,
        consents: store.consents(user).await?,
        follow_ups: store.follow_ups_of_user(user).await?,
    })
}
