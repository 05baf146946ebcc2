//! Dialog scripts: the compiled, validated form the engine runs on.
//!
//! `raw` is the file format, `compile` turns files into a [`Flow`] (one
//! script in one language, together with the routing table it routes with)
//! and reports every problem as a [`diag::Diagnostic`]. A `Flow` is immutable
//! and identified by a content hash of its sources, so a session pinned to a
//! version can always be resumed on exactly that version.

pub mod compile;
pub mod cond;
pub mod diag;
pub mod lint;
pub mod raw;
pub mod tmpl;
mod yaml_error;

use crate::domain::prefecture::Region;
use crate::routing::Routing;
use handlebars::Handlebars;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use compile::{compile_flow, lint_bundle, load_dir, Bundle, Sources};
pub use cond::Cond;
pub use diag::{Diagnostic, Loc, Severity};

/// The language of a script and of the messages around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ja" | "jp" | "japanese" | "日本語" | "ja-jp" => Some(Lang::Ja),
            "en" | "english" | "en-us" | "en-gb" | "英語" => Some(Lang::En),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Index of a node within its flow. Sessions store these, which is safe
/// because a session is pinned to one immutable flow version.
pub type NodeIx = u16;

/// A compiled script in one language.
pub struct Flow {
    /// Hex SHA-256 of the script and routing sources.
    pub version: String,
    pub script_id: String,
    pub lang: Lang,
    pub title: String,
    pub nodes: Vec<Node>,
    pub start: NodeIx,
    pub tags: Vec<TagRule>,
    pub commands: Commands,
    pub messages: Messages,
    pub routing: Routing,
    /// A follow-up dialog (step 5, `follow_up: true`): started for the
    /// owner of a matched case with its recipient already chosen.
    pub follow_up: bool,
    pub sources: Sources,
    /// The templates read once for rendering (see
    /// [`crate::render::render_input`]).
    pub(crate) prepared: crate::render::Prepared,
    pub(crate) templates: Handlebars<'static>,
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("script_id", &self.script_id)
            .field("lang", &self.lang)
            .field("version", &self.short_version())
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Flow {
    pub fn short_version(&self) -> &str {
        &self.version[..12.min(self.version.len())]
    }

    pub fn node(&self, ix: NodeIx) -> &Node {
        &self.nodes[ix as usize]
    }

    pub fn index_of(&self, id: &str) -> Option<NodeIx> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .map(|i| i as NodeIx)
    }

    /// The question nodes in script order.
    pub fn questions(&self) -> impl Iterator<Item = (NodeIx, &Node, &Question)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.kind {
                NodeKind::Ask(q) => Some((i as NodeIx, n, q)),
                _ => None,
            })
    }
}

#[derive(Debug)]
pub struct Node {
    pub id: String,
    /// Where the node is defined in its script file.
    pub loc: Loc,
    /// Short label for summaries; defaults to the id.
    pub label: String,
    pub has_say: bool,
    pub kind: NodeKind,
    pub next: Next,
}

#[derive(Debug)]
pub enum NodeKind {
    Say,
    Ask(Question),
    Route,
    Confirm,
    End(EndStatus),
}

#[derive(Debug)]
pub enum Next {
    /// Only end nodes have no successor.
    Stop,
    Goto(NodeIx),
    Branch {
        arms: Vec<(Cond, NodeIx)>,
        default: NodeIx,
    },
}

#[derive(Debug)]
pub struct Question {
    pub ty: AnswerType,
    pub has_retry: bool,
    pub max_retries: u8,
    pub on_give_up: GiveUp,
    pub optional: bool,
    /// Offered for correction at the confirmation.
    pub editable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GiveUp {
    Skip,
    Handoff,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndStatus {
    Completed,
    Declined,
    Cancelled,
    Handoff,
}

#[derive(Debug)]
pub enum AnswerType {
    Choice {
        options: Vec<ChoiceOption>,
    },
    Multi {
        options: Vec<ChoiceOption>,
        min: u32,
        max: u32,
    },
    YesNo,
    /// A yes/no question whose "yes" is recorded as consent to forward the
    /// case to the hubs chosen by the preceding route node.
    Consent {
        shares: Vec<String>,
    },
    Text {
        min: usize,
        max: usize,
        pattern: Option<Regex>,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        unit: Option<String>,
    },
    Prefecture,
    Email,
    Phone,
    /// `future`: a time wholly before today is asked again (see
    /// `RawNode::future`).
    Date {
        future: bool,
    },
}

impl AnswerType {
    pub fn name(&self) -> &'static str {
        match self {
            AnswerType::Choice { .. } => "choice",
            AnswerType::Multi { .. } => "multi",
            AnswerType::YesNo => "yesno",
            AnswerType::Consent { .. } => "consent",
            AnswerType::Text { .. } => "text",
            AnswerType::Number { .. } => "number",
            AnswerType::Prefecture => "prefecture",
            AnswerType::Email => "email",
            AnswerType::Phone => "phone",
            AnswerType::Date { .. } => "date",
        }
    }
    pub fn options(&self) -> &[ChoiceOption] {
        match self {
            AnswerType::Choice { options } | AnswerType::Multi { options, .. } => options,
            _ => &[],
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChoiceOption {
    pub id: String,
    pub label: String,
    /// Folded forms of the label and aliases, for forgiving matching.
    pub folded: Vec<String>,
    /// The label and aliases folded with word boundaries kept
    /// (`fold_keep_spaces`), for finding them inside a sentence.
    pub keys: Vec<String>,
}

#[derive(Debug)]
pub struct TagRule {
    pub name: String,
    pub label: String,
    pub from: Vec<NodeIx>,
    pub pattern: Regex,
}

/// Words for the global commands. Both languages' words work in every
/// script, so an owner who switches language mid-way is still understood.
#[derive(Debug, Clone)]
pub struct Commands {
    pub words: Vec<(String, Command)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Help,
    Back,
    Restart,
    Cancel,
    Answers,
    Skip,
}

impl Command {
    pub const ALL: [Command; 6] = [
        Command::Help,
        Command::Back,
        Command::Restart,
        Command::Cancel,
        Command::Answers,
        Command::Skip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::Back => "back",
            Command::Restart => "restart",
            Command::Cancel => "cancel",
            Command::Answers => "answers",
            Command::Skip => "skip",
        }
    }
    pub fn parse_name(s: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == s)
    }
    /// The built-in words, Japanese and English.
    pub fn builtin_words(self) -> &'static [&'static str] {
        match self {
            Command::Help => &["help", "ヘルプ", "使い方", "?", "/help"],
            Command::Back => &[
                "back",
                "go back",
                "戻る",
                "もどる",
                "戻って",
                "戻りたい",
                "戻ります",
                "前に戻る",
                "前の質問に戻る",
                "ひとつ前",
                "前の質問",
                "/back",
            ],
            Command::Restart => &[
                "restart",
                "start over",
                "最初から",
                "やり直す",
                "やりなおす",
                "最初からやり直す",
                "最初からやり直し",
                "/restart",
            ],
            Command::Cancel => &[
                "cancel",
                "中止",
                "キャンセル",
                "やめる",
                "やめます",
                "やめたい",
                "/cancel",
            ],
            Command::Answers => &[
                "answers",
                "my answers",
                "回答確認",
                "回答を見る",
                "/answers",
            ],
            Command::Skip => &["skip", "スキップ", "飛ばす", "/skip"],
        }
    }
    /// What the command is called in a given language, for buttons and help.
    pub fn display(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Command::Help, Lang::Ja) => "ヘルプ",
            (Command::Back, Lang::Ja) => "戻る",
            (Command::Restart, Lang::Ja) => "最初から",
            (Command::Cancel, Lang::Ja) => "中止",
            (Command::Answers, Lang::Ja) => "回答確認",
            (Command::Skip, Lang::Ja) => "スキップ",
            (c, Lang::En) => c.name(),
        }
    }
}

impl Commands {
    /// The command a message (folded with `fold_for_match`) is: one of the
    /// words exactly, or with punctuation and a polite ending after it
    /// (「中止します」「ヘルプ。」「スキップでお願いします」), which owners
    /// type and which must never be recorded as an answer and sent on.
    pub fn recognize(&self, folded_input: &str) -> Option<Command> {
        let exact = |s: &str| self.words.iter().find(|(w, _)| w == s).map(|(_, c)| *c);
        exact(folded_input)
            .or_else(|| crate::domain::text::without_polite_ending(folded_input).and_then(exact))
    }
}

/// System messages the engine sends outside the script's own nodes.
#[derive(Debug, Clone)]
pub struct Messages {
    map: std::collections::BTreeMap<String, String>,
}

/// Every system message key with its Japanese and English default. Scripts
/// may override any of them under `messages:`.
pub const MESSAGE_DEFAULTS: &[(&str, &str, &str)] = &[
    (
        "help",
        "いつでも次の言葉が使えます：「戻る」ひとつ前の質問へ／「回答確認」これまでの回答を表示／「最初から」やり直す／「中止」相談をやめる／「スキップ」任意の質問をとばす／「データ削除」ご回答を削除する。選択肢は番号でも答えられます。",
        "You can type these at any time: \"back\" (previous question), \"answers\" (show your answers so far), \"restart\" (start over), \"cancel\" (stop the consultation), \"skip\" (skip an optional question), \"delete my data\" (delete your answers). You can answer a choice by its number.",
    ),
    ("back_unavailable", "これより前の質問はありません。", "There is no earlier question."),
    ("restarted", "最初からやり直します。これまでの回答は使いません。", "Starting over. Your earlier answers will not be used."),
    (
        "cancelled",
        "相談を中止しました。ご回答はどこにも送っていません。ご回答を削除するには「データ削除」と入力してください。再開するときは「最初から」と入力してください。",
        "The consultation is cancelled. Nothing was sent to anyone. To delete your answers, type \"delete my data\". Type \"restart\" to begin again.",
    ),
    ("answers_header", "これまでの回答：", "Your answers so far:"),
    ("answers_empty", "まだ回答はありません。", "No answers yet."),
    ("retry", "すみません、お答えを読み取れませんでした。", "Sorry, I could not read that answer."),
    ("skip_not_allowed", "この質問はとばせません。", "This question cannot be skipped."),
    ("skipped", "この質問はとばしました。", "Skipped this question."),
    ("gave_up_skip", "この質問はいったんとばして先に進みます。", "Let's skip this question for now and go on."),
    ("gave_up_kept", "この質問は前のお答えのままにして先に進みます。", "Let's keep your earlier answer to this question and go on."),
    (
        "gave_up_handoff",
        "チャットでのご回答が難しいようですので、ここで相談をいったん終えます。お手数ですが、お近くのよろず支援拠点や商工会・商工会議所の担当者に直接ご相談ください。ご回答はどこにも送っていません。「最初から」でやり直すこともできます。",
        "This seems hard to answer in a chat, so the consultation stops here. Please talk to a person at your nearest Yorozu support hub or chamber of commerce directly. Nothing you answered was sent to anyone. Type \"restart\" to begin again.",
    ),
    ("gave_up_end", "相談をここで終了します。", "The consultation ends here."),
    (
        "finished",
        "この相談はすでに終了しています。新しく始めるには「最初から」と入力してください。",
        "This consultation has already ended. Type \"restart\" to begin a new one.",
    ),
    ("stale", "そのボタンは古い質問のものです。いまの質問にお答えください。", "That button belongs to an earlier question. Please answer the current question."),
    ("resumed", "前回の続きから再開します。", "Resuming where you left off."),
    (
        "typed_earlier",
        "このメッセージは、前の質問をご覧になっている間に送られたため、下の質問への回答にはしていません。前の質問へのご回答は保存されています（直すときは「戻る」）。下の質問にお答えください。",
        "This message was sent while you were looking at an earlier question, so it was not taken as the answer to the question below. Your answer to the earlier question is saved (type \"back\" to change it). Please answer the question below.",
    ),
    (
        "confirm_hint",
        "内容でよろしければ「送信」、直したい項目があればその番号を入力してください。",
        "If this is correct, type \"send\". To correct an item, type its number.",
    ),
    ("confirm_which", "直したい項目の番号を入力してください。", "Type the number of the item you want to correct."),
    ("empty", "空のメッセージでした。お答えを入力してください。", "That message was empty. Please type your answer."),
    ("not_answered", "（未回答）", "(not answered)"),
    ("skipped_value", "（回答なし）", "(skipped)"),
    ("consent_changed", "修正により送付先が変わりました。あらためて共有への同意をお聞きします。", "Your correction changed who would receive your case, so we ask for your consent again."),
    (
        "template_failed",
        "申し訳ありません。こちらのシステムの不具合で、いまは先に進めません。これまでのご回答は保存されています。管理者に知らせましたので、しばらくしてからもう一度お送りください。",
        "Sorry, something is wrong on our side and the consultation cannot go on right now. Your answers so far are saved. Our administrators have been told; please send your answer again later.",
    ),
    // The confirmation that is also the consent question (a `confirm` node
    // followed by an `ask: consent` node): the owner sees the sheet and the
    // recipients, then agrees and sends in one step.
    (
        "confirm_consent_hint",
        "よろしければ「送信」（同意して送信）、送らない場合は「同意しない」、送付先を選んだ理由は「なぜ」、直したい項目があればその番号を送ってください。",
        "Type \"send\" to agree and send, \"do not agree\" to send nothing, \"why\" to see why these recipients were chosen, or the number of an item to correct it.",
    ),
    (
        "confirm_consent_reask",
        "「送信」（同意して送信）、「同意しない」、「なぜ」、または直したい項目の番号（1〜{n}）でお答えください。",
        "Please answer \"send\" (agree and send), \"do not agree\", \"why\", or the number of an item to correct (1–{n}).",
    ),
    (
        "confirm_consent_no",
        "送らずに終える場合は「同意しない」、直したい項目があればその番号（1〜{n}）を送ってください。",
        "To end without sending anything, type \"do not agree\"; to correct an item, type its number (1–{n}).",
    ),
    ("confirm_send_label", "同意して送信する", "Agree and send"),
    ("confirm_decline_label", "同意しない（送らない）", "Do not agree (send nothing)"),
    ("confirm_why_label", "送付先の理由を見る", "Why these recipients?"),
    ("route_why", "この送付先を選んだ理由：{reason}", "Why these recipients: {reason}"),
    ("route_why_copy", "（写し）", " (copy)"),
    (
        "route_why_tail",
        "同意しなければ、どこにも送りません。",
        "If you do not agree, nothing is sent to anyone.",
    ),
    ("route_changed", "修正により送付先が変わりました。新しい送付先をご確認ください。", "Your correction changed who would receive your case; please check the new recipients."),
    ("recipients_header", "■ 送付先（同意いただくと、この内容をお送りします）", "■ Recipients (with your consent, this is sent to them)"),
    // One line per kind of institution on the consent screen; the longer
    // `hub_about_*` texts answer "why".
    ("hub_role_pro_talent", "求人像の整理から人材の確保までを支援する公的な拠点", "a public hub that helps define and find the talent you need"),
    ("hub_role_yorozu", "あらゆる経営課題の相談に無料で応じる公的な相談所", "a free public help desk for any management issue"),
    ("hub_role_chamber", "地域の事業者の身近な相談先。採用後の定着まで伴走します", "the nearby advisor of local businesses, with you after a hire too"),
    ("hub_role_bank", "経営相談や人材紹介も行う地域の金融機関（融資のご相談でなくても大丈夫です）", "a regional bank that also advises and introduces talent (no loan needed)"),
    ("hub_role_public_agency", "専門家を抱え、地域の事業者を支援する公的な機関", "a public agency with experts that supports local businesses"),
    ("hub_role_consultant", "課題の整理と成長戦略づくりを支援する専門家", "experts who help sort out issues and plan growth"),
    ("hub_role_npo", "兼業・副業人材やインターンを地域でつなぎ、受け入れ後も支える団体", "a community organisation that brings in side-job talent and interns and supports you after"),
    ("hub_role_recruiter", "候補者を探して紹介する人材紹介会社", "a recruitment agency that finds and introduces candidates"),
    // What each kind of institution does, from the guide's table of
    // support institutions (経営支援機関の特徴), told to an owner who asks
    // why a hub was chosen.
    (
        "hub_about_pro_talent",
        "都道府県が設置する公的な支援機関です。成長を目指す地域企業の経営戦略づくりを支援し、人材紹介会社などと連携して、必要な人材（求人像・人材要件の整理から）の確保を支援します。",
        "A public hub set up by the prefecture. It helps growing local companies shape their strategy and, with private recruiters, find the professional talent they need, starting from defining the role.",
    ),
    (
        "hub_about_yorozu",
        "国が47都道府県に設置する無料の経営相談所です。販路・IT・資金・補助金など、中小企業のあらゆる経営課題の相談に応じ、解決策を一緒に考えます。",
        "A free business help desk the national government runs in every prefecture. Its coordinators take any management issue of a small company (sales, IT, funding, subsidies) and work out a plan with you.",
    ),
    (
        "hub_about_chamber",
        "地域の小規模事業者の身近な相談先です。経営指導員が経営相談に応じ、採用後の定着やその後の課題まで継続して伴走します。",
        "The nearby advisor of small local businesses. Its business advisors take management questions and stay with you after a hire and on to the next issue.",
    ),
    (
        "hub_about_bank",
        "地域金融機関（地方銀行・信用金庫など）は、融資だけでなく経営相談にも応じます。2018年から人材紹介も行えるようになり、支援機関や人材事業者と連携して、経営幹部や専門人材、副業人材の確保を支援しています。融資のご相談でなくても大丈夫です。",
        "Regional banks and shinkin banks advise on management, not only on loans. Since 2018 they may also introduce talent, and they work with support hubs and recruiters to find managers, specialists and side-job talent. You do not need to want a loan.",
    ),
    (
        "hub_about_public_agency",
        "都道府県などが出資する公的な支援団体（産業振興機関など）です。様々な分野の専門家を抱え、経営力の強化を支援します。",
        "A public business-support agency funded by the prefecture or cities (e.g. an industry promotion centre), with experts in many fields.",
    ),
    (
        "hub_about_consultant",
        "税理士・中小企業診断士は、財務・経営の面から課題の整理と成長戦略づくりを支援する専門家です。",
        "Tax accountants and SME consultants help sort out issues and build a growth plan from the financial and management side.",
    ),
    (
        "hub_about_npo",
        "地域の発展のために活動する団体（NPO・まちづくり会社）です。インターンや兼業・副業人材のコーディネートなど、人材の受け入れから定着までを地域で支援します。",
        "A community organisation (NPO or community company) that coordinates internships and side-job talent and supports a company from taking people in to keeping them.",
    ),
    (
        "hub_about_recruiter",
        "人材紹介会社です。求める人材像に合う候補者を探し、ご紹介します。",
        "A recruitment agency: it searches for and introduces candidates who fit the role.",
    ),
];

impl Messages {
    pub fn new(lang: Lang, overrides: std::collections::BTreeMap<String, String>) -> Messages {
        let mut map: std::collections::BTreeMap<String, String> = MESSAGE_DEFAULTS
            .iter()
            .map(|(k, ja, en)| {
                (
                    k.to_string(),
                    if lang == Lang::Ja { ja } else { en }.to_string(),
                )
            })
            .collect();
        map.extend(overrides);
        Messages { map }
    }
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.map.get(key).map(String::as_str).unwrap_or(key)
    }
    pub fn is_known(key: &str) -> bool {
        MESSAGE_DEFAULTS.iter().any(|(k, _, _)| *k == key)
    }
}

/// Words that mean "yes" / "no" at a yes/no, consent or confirm question.
pub fn yes_words() -> &'static [&'static str] {
    &[
        "はい",
        "yes",
        "y",
        "ok",
        "おk",
        "同意",
        "同意する",
        "同意します",
        "はい、同意します",
        "うん",
        "ええ",
        "agree",
        "i agree",
    ]
}
pub fn no_words() -> &'static [&'static str] {
    &[
        "いいえ",
        "no",
        "n",
        "同意しない",
        "同意しません",
        "いや",
        "いえ",
        "disagree",
        "i do not agree",
        "i don't agree",
        "do not agree",
        "don't agree",
    ]
}

/// Words that send the case at the confirmation. Kept apart from
/// [`yes_words`] so that "send" can never count as consent.
pub fn send_words() -> &'static [&'static str] {
    &[
        "送信",
        "送信する",
        "送る",
        "はい",
        "ok",
        "おk",
        "yes",
        "y",
        "send",
        "submit",
    ]
}

/// Used by conditions on prefecture answers (`region: 近畿`).
pub fn parse_region(s: &str) -> Option<Region> {
    Region::parse(s).ok()
}
