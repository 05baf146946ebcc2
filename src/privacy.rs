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

/// Typed words that ask to delete the owner's data when they are the whole
/// message (Slack's DM and the terminal chat; Discord has `/forget`).
const FORGET_WORDS: &[&str] = &[
    "/forget",
    "forget",
    "forget me",
    "delete my data",
    "データ削除",
    "データを削除",
    "データの削除",
    "データを削除して",
    "削除",
    "削除して",
    "削除したい",
];

/// Whether a message asks to delete the owner's data (the whole message,
/// as the engine matches its command words: case, width and spaces folded).
pub fn is_forget_request(text: &str) -> bool {
    let t = crate::domain::text::fold_for_match(text);
    let is = |s: &str| {
        FORGET_WORDS
            .iter()
            .any(|w| crate::domain::text::fold_for_match(w) == s)
    };
    // 「データ削除してください」「削除をお願いします」 ask the same.
    is(&t)
        || crate::domain::text::without_polite_ending(&t)
            .is_some_and(|s| is(s) || s.strip_suffix('を').is_some_and(is))
}

/// Whether a typed answer to the deletion question agrees to delete: its
/// first option (「1」, the label `yes_label`), a yes, or the request said
/// again (「削除します」「はい、削除してください」「消してください」). Anything
/// else keeps the data: deleting is the one answer that cannot be undone.
pub fn confirms_forget(text: &str, yes_label: &str) -> bool {
    use crate::domain::text::{fold_for_match, without_polite_ending};
    const YES: &[&str] = &[
        "1",
        "はい",
        "yes",
        "y",
        "delete",
        "削除",
        "削除する",
        "消す",
        "消して",
        "消してください",
        "消去",
        "消去する",
        "お願い",
        "おねがい",
        "お願いします",
    ];
    let t = fold_for_match(text);
    let t = t
        .strip_prefix(&*fold_for_match("はい、"))
        .or_else(|| t.strip_prefix(&*fold_for_match("はい")))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(&t);
    let is = |s: &str| {
        YES.iter()
            .chain(std::iter::once(&yes_label))
            .any(|w| fold_for_match(w) == s)
            || is_forget_request(s)
    };
    is(t) || without_polite_ending(t).is_some_and(is)
}

/// What an owner reads when they ask a chat platform's bot to forget them
/// (`/forget` on Discord and Slack, or the typed words on Slack): the same
/// wording on every platform, Japanese first in the Japanese script.
pub mod forget_texts {
    use crate::render::prompt::t;
    use crate::script::Lang;
    use crate::store::ForgetReport;

    /// The question asked before anything is deleted.
    pub fn confirm(lang: Lang) -> String {
        t(
            lang,
            "あなたのデータを削除します：これまでの回答、相談の記録、支援機関に送った案件の内容（チャンネルの投稿とスレッドに転送したあなたのメッセージを含む）。\n\
             個人情報保護法により、同意と第三者提供の記録（送付先・日時・共有した項目。回答の内容は含みません）は3年間保管します。\n\
             削除は取り消せません。削除しますか？",
            "This deletes your data: your answers, your consultations, and the contents of cases sent to support hubs (including their channel posts and your messages relayed to staff).\n\
             Japan's privacy law (APPI) obliges us to keep the record of your consent and of each hand-over to a third party (recipient, date, items shared; not your answers) for three years.\n\
             This cannot be undone. Delete?",
        )
    }

    pub fn yes_label(lang: Lang) -> String {
        t(lang, "削除する", "Delete")
    }

    pub fn no_label(lang: Lang) -> String {
        t(lang, "やめる", "Keep my data")
    }

    pub fn kept(lang: Lang) -> String {
        t(lang, "削除は取りやめました。", "Nothing was deleted.")
    }

    pub fn deleting(lang: Lang) -> String {
        t(lang, "削除しています…", "Deleting…")
    }

    pub fn not_yours(lang: Lang) -> String {
        t(lang, "この操作はできません。", "You cannot do that.")
    }

    pub fn done(lang: Lang, r: &ForgetReport) -> String {
        t(
            lang,
            &format!(
                "削除しました：相談 {} 件、回答 {} 件、案件の内容 {} 件（支援機関のチャンネルの投稿も消しました）。\n個人情報保護法により、同意と第三者提供の記録 {} 件（送付先・日時・共有した項目。回答の内容は含みません）は3年間保管します。",
                r.sessions, r.answers, r.cases, r.consent_records_kept
            ),
            &format!(
                "Deleted: {} consultation(s), {} answer(s), the contents of {} case(s) (their posts in the hubs' channels too).\nAs Japan's privacy law (APPI) requires, {} record(s) of your consent and of hand-overs to third parties (recipient, date, items shared; not your answers) are kept for three years.",
                r.sessions, r.answers, r.cases, r.consent_records_kept
            ),
        )
    }

    /// [`done`] for the terminal, whose copies are inbox files, not posts.
    pub fn done_local(lang: Lang, r: &ForgetReport, files: usize) -> String {
        t(
            lang,
            &format!(
                "削除しました：相談 {} 件、回答 {} 件、案件の内容 {} 件（受信箱のファイル {} 件も削除済みの表示に置き換えました）。\n個人情報保護法により、同意と第三者提供の記録 {} 件（送付先・日時・共有した項目。回答の内容は含みません）は3年間保管します。",
                r.sessions, r.answers, r.cases, files, r.consent_records_kept
            ),
            &format!(
                "Deleted: {} consultation(s), {} answer(s), the contents of {} case(s) ({} inbox file(s) replaced by a deletion notice).\nAs Japan's privacy law (APPI) requires, {} record(s) of your consent and of hand-overs to third parties (recipient, date, items shared; not your answers) are kept for three years.",
                r.sessions, r.answers, r.cases, files, r.consent_records_kept
            ),
        )
    }

    pub fn failed(lang: Lang) -> String {
        t(
            lang,
            "削除できませんでした。少し待ってからもう一度 /forget を実行してください。",
            "Your data could not be deleted. Please run /forget again in a moment.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_whole_message_asks_to_forget() {
        assert!(is_forget_request("データ削除"));
        assert!(is_forget_request(" Forget "));
        assert!(is_forget_request("/forget"));
        assert!(is_forget_request("ＤＥＬＥＴＥ MY DATA"));
        assert!(is_forget_request("データ削除してください"));
        assert!(is_forget_request("データの削除をお願いします。"));
        assert!(is_forget_request("削除をお願いします"));
        assert!(is_forget_request("データ削除。"));
    }

    #[test]
    fn the_deletion_is_confirmed_only_by_a_yes_or_the_request_again() {
        for yes in [
            "1",
            "削除する",
            "削除する。",
            "削除します",
            "削除",
            "はい、削除してください",
            "消してください",
            "お願いします",
            "はい",
            "Delete",
        ] {
            assert!(confirms_forget(yes, "削除する"), "{yes}");
        }
        for no in [
            "2",
            "やめる",
            "いいえ",
            "削除しない",
            "やっぱりやめます",
            "",
        ] {
            assert!(!confirms_forget(no, "削除する"), "{no}");
        }
        assert!(!is_forget_request("データ削除の方法を知りたい"));
        assert!(!is_forget_request("forgetful"));
    }
}
