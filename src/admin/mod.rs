//! Tools for administrators: pictures of a script and routing explanations.
//! Pure text generation; the CLI does the I/O.

pub mod explain;
pub mod graph;

/// What administrators read when a script template failed for an owner
/// (posted to the Discord admin channel): the script, version, node and
/// template, never the owner's answers, in the script's language.
pub fn template_fault_text(flow: &crate::script::Flow, f: &crate::engine::TemplateFault) -> String {
    match flow.lang {
        crate::script::Lang::Ja => format!(
            "スクリプト {}（{}、版 {}）のノード `{}` の `{}` が表示できず、相談者の操作を受け付けませんでした（回答は保存済み）。理由: {}。スクリプトを直して `madoguchi dialogs check` を実行してください。",
            flow.script_id,
            flow.lang,
            flow.short_version(),
            f.node,
            f.template,
            f.reason
        ),
        crate::script::Lang::En => format!(
            "A template failed in script {} ({}, version {}): `{}` of node `{}`. The owner's step was refused (their answers are kept). Reason: {}. Fix the script and run `madoguchi dialogs check`.",
            flow.script_id,
            flow.lang,
            flow.short_version(),
            f.template,
            f.node,
            f.reason
        ),
    }
}
