//! Compiles script and routing files into a [`Flow`], reporting every problem.

use super::diag::{closest, normalize, template_pos, Bi, Diagnostic, Diags, Loc};
use super::raw::*;
use super::*;
use crate::bi;
use crate::domain::ids::HubId;
use crate::domain::prefecture::{Prefecture, Region};
use crate::domain::text::{fold_for_match, fold_keep_spaces};
use crate::routing::{DiscordTarget, Hub, HubKind, Pick, Routing, Rule, SlackTarget};
use crate::script::cond::{Size, Test};
use handlebars::template::{Parameter, Template, TemplateElement};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// The exact texts a flow was compiled from. Stored with every version so
/// that a session can be resumed on its pinned version after the files
/// changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub script_name: String,
    pub script_text: String,
    pub routing_name: String,
    pub routing_text: String,
}

impl Sources {
    pub fn version(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"madoguchi-flow-v1\0");
        h.update(self.script_text.as_bytes());
        h.update(b"\0");
        h.update(self.routing_text.as_bytes());
        format!("{:x}", h.finalize())
    }
}

/// Every flow found in a dialogs directory.
#[derive(Debug, Default)]
pub struct Bundle {
    pub flows: Vec<Arc<Flow>>,
    /// Warnings (a bundle with errors is never built).
    pub warnings: Vec<Diagnostic>,
}

impl Bundle {
    pub fn flow(&self, script_id: &str, lang: Lang) -> Option<Arc<Flow>> {
        self.flows
            .iter()
            .find(|f| f.script_id == script_id && f.lang == lang)
            .cloned()
    }
    pub fn by_version(&self, version: &str) -> Option<Arc<Flow>> {
        self.flows.iter().find(|f| f.version == version).cloned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the dialogs folder {path}: {source}; check the path (the folder given to `dialogs check`, or `--dialogs` / MADOGUCHI_DIALOGS)")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the dialog files have {} error(s); run `madoguchi dialogs check` to see them", .0.iter().filter(|d| d.severity == Severity::Error).count())]
    Invalid(Vec<Diagnostic>),
}

pub const ROUTING_FILE: &str = "routing.yaml";

/// Loads and compiles every script in `dir` (files `*.yaml` beside
/// `routing.yaml`; sub-directories such as `tests/` are not scripts).
pub fn load_dir(dir: &Path) -> Result<Bundle, LoadError> {
    let io = |path: &Path, source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let routing_path = dir.join(ROUTING_FILE);
    let mut diags = Vec::new();
    let routing_text = match read_text(&routing_path).map_err(|e| io(&routing_path, e))? {
        Ok(t) => t,
        Err(d) => {
            diags.push(d);
            String::new()
        }
    };
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml") | Some("yml")
            )
        })
        .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(ROUTING_FILE))
        .collect();
    names.sort();
    let mut flows = Vec::new();
    if !diags.is_empty() {
        // Without a readable routing file no script can be compiled.
        return Err(LoadError::Invalid(diags));
    }
    for p in names {
        let text = match read_text(&p).map_err(|e| io(&p, e))? {
            Ok(t) => t,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let sources = Sources {
            script_name: display_path(&p),
            script_text: text,
            routing_name: display_path(&routing_path),
            routing_text: routing_text.clone(),
        };
        let (flow, d) = compile_flow(sources);
        diags.extend(d);
        if let Some(f) = flow {
            flows.push(Arc::new(f));
        }
    }
    if flows.is_empty() && !diags.iter().any(|d| d.severity == Severity::Error) {
        let mut d = Diags::new(display_path(dir));
        d.error(
            Loc::default(),
            "no-scripts",
            bi!("no dialog scripts found", "対話スクリプトが見つかりません"),
            bi!(
                "add a script such as first_contact.ja.yaml beside routing.yaml",
                "routing.yaml と同じフォルダに first_contact.ja.yaml などのスクリプトを置いてください"
            ),
        );
        diags.extend(d.items);
    }
    diags.extend(cross_language(&flows));
    let diags = normalize(diags);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(LoadError::Invalid(diags));
    }
    Ok(Bundle {
        flows,
        warnings: diags,
    })
}

/// Slower checks that only administrators' tools run (`dialogs check`,
/// reload): routing rules that can never route a case. Kept out of
/// [`load_dir`] so that start-up and tests do not pay for them.
pub fn lint_bundle(bundle: &Bundle) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for flow in &bundle.flows {
        let mut rd = Diags::new(flow.sources.routing_name.clone());
        for (i, problem) in super::lint::lint_routing(flow) {
            let rule = &flow.routing.rules[i];
            match problem {
                super::lint::RuleProblem::NeverMatches => rd.warn(
                    rule.loc,
                    "rule-never-matches",
                    (format!("rule `{}` can never route a case: its condition never holds with a hub for the owner's prefecture", rule.id), format!("ルール `{}` は案件を振り分けることがありません。条件が、都道府県に対応する拠点のある場合に一度も成り立ちません", rule.id)),
                    bi!("check the condition's values and that hubs of the chosen kind cover the prefectures it targets", "条件の値と、選んだ種別の拠点が対象の都道府県を担当しているかを確認してください"),
                ),
                super::lint::RuleProblem::Shadowed { by } => rd.warn(
                    rule.loc,
                    "rule-shadowed",
                    (format!("rule `{}` never routes a case: the earlier rule `{by}` always takes it first", rule.id), format!("ルール `{}` は使われません。先にあるルール `{by}` が常に先に適用されます", rule.id)),
                    bi!("move this rule above the other one, or make the earlier rule's condition narrower", "このルールを前に移すか、前のルールの条件を絞ってください"),
                ),
            }
        }
        out.extend(rd.items);
    }
    normalize(out)
}

/// Reads a dialog file as UTF-8. A file in another encoding (often
/// Shift_JIS, as saved by older Japanese editors) gets a diagnostic that
/// names the encoding and says how to convert it, instead of a reader
/// error about invalid bytes.
fn read_text(p: &Path) -> std::io::Result<Result<String, Diagnostic>> {
    let bytes = std::fs::read(p)?;
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(&bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Ok(s.to_string())),
        Err(e) => {
            let name = guess_encoding(bytes);
            let file = display_path(p);
            // Where the first byte that is not UTF-8 is.
            let before = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
            let line = before.matches('\n').count() as u64 + 1;
            let col = before
                .rsplit('\n')
                .next()
                .map(|l| l.chars().count())
                .unwrap_or(0) as u64
                + 1;
            let (en_name, ja_name) = match name {
                Some(n) => (format!("{n}, not UTF-8"), format!(" UTF-8 ではなく {n} ")),
                None => ("not UTF-8".to_string(), "UTF-8 ではありません".to_string()),
            };
            let from = name
                .map(|n| match n {
                    "Shift_JIS" => "SHIFT_JIS",
                    "EUC-JP" => "EUC-JP",
                    other => other,
                })
                .unwrap_or("SHIFT_JIS");
            let mut d = Diags::new(file.clone());
            d.error(
                Loc::new(line, col),
                "not-utf8",
                (
                    format!("the file is encoded in {en_name}"),
                    if name.is_some() {
                        format!("このファイルの文字コードは{ja_name}です").replace("  ", " ")
                    } else {
                        format!("このファイルの文字コードが{ja_name}")
                    },
                ),
                (
                    format!("save it as UTF-8 in your editor (\"Save as\", encoding UTF-8), or convert it with `iconv -f {from} -t UTF-8 {file} > converted.yaml` and replace the file with converted.yaml"),
                    format!("エディタで文字コードを UTF-8 にして保存し直すか（「名前を付けて保存」で UTF-8 を選ぶ）、`iconv -f {from} -t UTF-8 {file} > converted.yaml` で変換してから元のファイルと置き換えてください"),
                ),
            );
            Ok(Err(d.items.remove(0)))
        }
    }
}

/// The encoding a non-UTF-8 file most likely uses.
fn guess_encoding(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Some("UTF-16");
    }
    for enc in [encoding_rs::SHIFT_JIS, encoding_rs::EUC_JP] {
        if enc
            .decode_without_bom_handling_and_without_replacement(bytes)
            .is_some()
        {
            return Some(if enc == encoding_rs::SHIFT_JIS {
                "Shift_JIS"
            } else {
                "EUC-JP"
            });
        }
    }
    None
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}

/// Questions present in one language variant and missing in another.
fn cross_language(flows: &[Arc<Flow>]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for a in flows {
        for b in flows {
            if a.script_id != b.script_id || a.lang == b.lang {
                continue;
            }
            for (_, n, q) in a.questions() {
                let missing = match b.index_of(&n.id).map(|i| &b.node(i).kind) {
                    Some(NodeKind::Ask(qb)) => qb.ty.name() != q.ty.name(),
                    _ => true,
                };
                if missing {
                    let mut d = Diags::new(b.sources.script_name.clone());
                    let there = format!("{}:{}:{}", a.sources.script_name, n.loc.line, n.loc.col);
                    d.error(
                        Loc::new(1, 1),
                        "missing-translation",
                        (
                            format!("question `{}` ({}) at {there} is missing from this {} script", n.id, q.ty.name(), b.lang),
                            format!("{there} の質問 `{}`（{}）が、この{}スクリプトにありません", n.id, q.ty.name(), b.lang),
                        ),
                        bi!(
                            "add the question with the same id and answer type, or remove it from the other file",
                            "同じ id と回答タイプの質問を追加するか、もう一方のファイルから削除してください"
                        ),
                    );
                    out.extend(d.items);
                }
            }
        }
    }
    out
}

/// Compiles one script with its routing file. Returns the flow when there
/// are no errors, and every diagnostic found either way.
pub fn compile_flow(sources: Sources) -> (Option<Flow>, Vec<Diagnostic>) {
    let mut sd = Diags::new(sources.script_name.clone());
    let mut rd = Diags::new(sources.routing_name.clone());
    let raw = parse_yaml::<RawScript>(&sources.script_text, &mut sd);
    let raw_routing = parse_yaml::<RawRouting>(&sources.routing_text, &mut rd);
    let flow = match raw {
        Some(raw) => Compiler {
            src: &sources.script_text,
            d: &mut sd,
            templates: Vec::new(),
        }
        .flow(raw, raw_routing, &sources, &mut rd),
        None => None,
    };
    let mut all = sd.items;
    all.extend(rd.items);
    let all = normalize(all);
    let ok = !all.iter().any(|d| d.severity == Severity::Error);
    (flow.filter(|_| ok), all)
}

fn parse_yaml<T: for<'de> serde::Deserialize<'de>>(text: &str, d: &mut Diags) -> Option<T> {
    match serde_saphyr::from_str::<T>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let loc = e
                .location()
                .map(|l| Loc::from(&l))
                .unwrap_or(Loc::new(1, 1));
            let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
            let msg = e.render_with_options(opts);
            // The library appends its own position; ours is in the prefix.
            let msg = msg
                .split(" at line ")
                .next()
                .unwrap_or(&msg)
                .trim()
                .to_string();
            let (loc, msg, hint) = super::yaml_error::explain(&msg, loc, text);
            d.error(loc, "syntax", msg, hint);
            None
        }
    }
}

/// Names a template may use besides answer keys.
pub const RESERVED_VARS: &[&str] = &[
    "route", "tags", "has_tag", "answers", "title", "today", "case_id",
];
/// Helpers available in templates (handlebars built-ins and ours).
const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or",
    "not", "len", "default",
];

struct Compiler<'a> {
    src: &'a str,
    d: &'a mut Diags,
    /// Every template that compiled, for the checks that need the whole
    /// flow (a sample render, answers missing on some path).
    templates: Vec<TemplateInfo>,
}

/// A compiled template and where it is shown.
struct TemplateInfo {
    /// Its name in the flow's registry (`3.text`, `summary`).
    name: String,
    /// Where its text starts in the script file.
    at: Loc,
    /// The node it belongs to; `None` for the summary and headline.
    node: Option<usize>,
    /// Variables it shows as they are, with their position in the
    /// template and the `{{#if}}` blocks around them.
    unguarded: Vec<super::tmpl::Shown>,
}

/// What conditions may refer to.
struct Names<'a> {
    index: &'a HashMap<String, NodeIx>,
    kinds: &'a [Option<&'a AnswerType>],
    tags: &'a HashSet<String>,
    /// The routing file's areas, for `area:` conditions (empty in scripts).
    areas: &'a HashMap<String, Vec<u32>>,
}

impl<'a> Compiler<'a> {
    fn flow(
        mut self,
        raw: RawScript,
        raw_routing: Option<RawRouting>,
        sources: &Sources,
        rd: &mut Diags,
    ) -> Option<Flow> {
        let lang = match Lang::parse(&raw.lang.value) {
            Some(l) => l,
            None => {
                self.d.error(
                    &raw.lang,
                    "bad-lang",
                    (
                        format!("unknown language `{}`", raw.lang.value),
                        format!("不明な言語 `{}` です", raw.lang.value),
                    ),
                    bi!("use `ja` or `en`", "`ja` か `en` を指定してください"),
                );
                Lang::Ja
            }
        };
        if raw.nodes.is_empty() {
            self.d.error(
                &raw.start,
                "no-nodes",
                bi!("the script has no nodes", "スクリプトにノードがありません"),
                bi!(
                    "add questions under `nodes:`",
                    "`nodes:` の下に質問を追加してください"
                ),
            );
            return None;
        }
        // Index node ids first so that references can be checked in any order.
        let mut index: HashMap<String, NodeIx> = HashMap::new();
        for (i, n) in raw.nodes.iter().enumerate() {
            let id = &n.id.value;
            if !valid_ident(id) {
                self.d.error(
                    &n.id,
                    "bad-id",
                    (format!("node id `{id}` is not a valid name"), format!("ノード id `{id}` は使えない名前です")),
                    bi!(
                        "use lowercase letters, digits and '_' starting with a letter, e.g. company_name",
                        "英小文字・数字・'_' を使い、英字で始めてください（例: company_name）"
                    ),
                );
            }
            if n.ask.is_some() && RESERVED_VARS.contains(&id.as_str()) {
                self.d.error(
                    &n.id,
                    "reserved-id",
                    (
                        format!("node id `{id}` is reserved for templates"),
                        format!("ノード id `{id}` はテンプレート用に予約されています"),
                    ),
                    bi!("choose another id", "別の id にしてください"),
                );
            }
            if index.insert(id.clone(), i as NodeIx).is_some() {
                self.d.error(
                    &n.id,
                    "duplicate-id",
                    (
                        format!("node id `{id}` is used twice"),
                        format!("ノード id `{id}` が重複しています"),
                    ),
                    bi!(
                        "give every node its own id",
                        "ノードごとに別の id を付けてください"
                    ),
                );
            }
        }
        if raw.nodes.len() > u16::MAX as usize {
            return None;
        }
        let default_retries = raw.defaults.max_retries.unwrap_or(2);
        let default_give_up = raw
            .defaults
            .on_give_up
            .as_ref()
            .map(|g| self.give_up(g))
            .unwrap_or(GiveUp::Handoff);

        // Node kinds and answer types (without successors yet).
        let mut kinds: Vec<Option<NodeKind>> = Vec::with_capacity(raw.nodes.len());
        for n in &raw.nodes {
            kinds.push(self.node_kind(n, default_retries, default_give_up));
        }
        let ask_types: Vec<Option<&AnswerType>> = kinds
            .iter()
            .map(|k| match k {
                Some(NodeKind::Ask(q)) => Some(&q.ty),
                _ => None,
            })
            .collect();

        // Tags.
        let mut tag_names = HashSet::new();
        let mut tags = Vec::new();
        for t in &raw.tags {
            if !valid_ident(&t.tag.value) {
                self.d.error(
                    &t.tag,
                    "bad-tag",
                    (
                        format!("tag name `{}` is not a valid name", t.tag.value),
                        format!("タグ名 `{}` は使えない名前です", t.tag.value),
                    ),
                    bi!(
                        "use lowercase letters, digits and '_', e.g. sales",
                        "英小文字・数字・'_' を使ってください（例: sales）"
                    ),
                );
            }
            if !tag_names.insert(t.tag.value.clone()) {
                self.d.error(
                    &t.tag,
                    "duplicate-tag",
                    (
                        format!("tag `{}` is defined twice", t.tag.value),
                        format!("タグ `{}` が二重に定義されています", t.tag.value),
                    ),
                    bi!(
                        "merge the two patterns into one with `|`",
                        "2つのパターンを `|` でひとつにまとめてください"
                    ),
                );
            }
            let mut from = Vec::new();
            for k in &t.from {
                match index.get(&k.value) {
                    Some(&ix)
                        if matches!(ask_types[ix as usize], Some(AnswerType::Text { .. })) =>
                    {
                        from.push(ix)
                    }
                    Some(_) => self.d.error(
                        k,
                        "tag-source-not-text",
                        (
                            format!(
                                "tag `{}` reads `{}`, which is not a free-text question",
                                t.tag.value, k.value
                            ),
                            format!(
                                "タグ `{}` の対象 `{}` は自由記述の質問ではありません",
                                t.tag.value, k.value
                            ),
                        ),
                        bi!(
                            "list only questions with `ask: text` under `from:`",
                            "`from:` には `ask: text` の質問だけを書いてください"
                        ),
                    ),
                    None => self.unknown_node(k, &index),
                }
            }
            let pattern = self.regex(&t.pattern);
            if let Some(pattern) = pattern {
                tags.push(TagRule {
                    name: t.tag.value.clone(),
                    label: t.label.clone().unwrap_or_else(|| t.tag.value.clone()),
                    from,
                    pattern,
                });
            }
        }

        let no_areas = HashMap::new();
        let names = Names {
            index: &index,
            kinds: &ask_types,
            tags: &tag_names,
            areas: &no_areas,
        };
        // Successors.
        let mut nexts = Vec::with_capacity(raw.nodes.len());
        for (i, n) in raw.nodes.iter().enumerate() {
            let is_end = matches!(kinds[i], Some(NodeKind::End(_)));
            nexts.push(self.next(n, is_end, &names));
        }

        // Templates: one registry holds every template of the flow.
        let mut hb = Handlebars::new();
        hb.register_escape_fn(handlebars::no_escape);
        crate::render::register_helpers(&mut hb);
        let known_var = |v: &str| index.contains_key(v) || RESERVED_VARS.contains(&v);
        for (i, n) in raw.nodes.iter().enumerate() {
            if let Some(s) = &n.say {
                self.template(&mut hb, &format!("{i}.say"), s, &known_var, Some(i));
            }
            if let Some(s) = &n.text {
                self.template(&mut hb, &format!("{i}.text"), s, &known_var, Some(i));
            }
            if let Some(s) = &n.retry {
                self.template(&mut hb, &format!("{i}.retry"), s, &known_var, Some(i));
            }
        }
        self.template(&mut hb, "summary", &raw.summary, &known_var, None);
        match &raw.headline {
            Some(h) => self.template(&mut hb, "headline", h, &known_var, None),
            None => {
                hb.register_template_string("headline", "{{title}}")
                    .expect("constant template compiles");
            }
        }
        let mut overrides = BTreeMap::new();
        if let Some(m) = &raw.messages {
            for (k, v) in &m.value {
                if !Messages::is_known(k) {
                    let keys: Vec<&str> = MESSAGE_DEFAULTS.iter().map(|x| x.0).collect();
                    let hint = super::diag::did_you_mean(closest(k, keys.iter().copied()));
                    self.d.error(
                        m,
                        "unknown-message",
                        (
                            format!("unknown message key `{k}`"),
                            format!("不明なメッセージキー `{k}` です"),
                        ),
                        (
                            format!("{}known keys: {}", hint.0, keys.join(", ")),
                            format!("{}使えるキー: {}", hint.1, keys.join(", ")),
                        ),
                    );
                }
                overrides.insert(k.clone(), v.clone());
            }
        }

        // A follow-up script routes nothing itself (its recipient was chosen
        // when the case was routed), and the routing rules speak of the
        // first consultation's questions, which it does not ask: only the
        // hubs and the follow-up policy are compiled for it.
        let routing =
            raw_routing.and_then(|r| compile_routing(r, &names, rd, sources, !raw.follow_up));

        // Commands: built-in words plus the script's own.
        let mut words = Vec::new();
        for c in Command::ALL {
            for w in c.builtin_words() {
                words.push((fold_for_match(w), c));
            }
        }
        for (name, ws) in &raw.commands {
            match Command::parse_name(name) {
                Some(c) => words.extend(ws.iter().map(|w| (fold_for_match(w), c))),
                None => self.d.error(
                    &raw.start,
                    "unknown-command",
                    (
                        format!("unknown command `{name}` under `commands:`"),
                        format!("`commands:` の `{name}` は不明なコマンドです"),
                    ),
                    bi!(
                        "use help, back, restart, cancel, answers or skip",
                        "help, back, restart, cancel, answers, skip のいずれかを使ってください"
                    ),
                ),
            }
        }

        let start = match index.get(&raw.start.value) {
            Some(&s) => s,
            None => {
                self.unknown_node(&raw.start, &index);
                0
            }
        };

        if self.d.has_errors() || rd.has_errors() {
            return None;
        }
        let routing = routing?;
        let nodes: Vec<Node> = raw
            .nodes
            .iter()
            .zip(kinds)
            .zip(nexts)
            .map(|((n, kind), next)| Node {
                id: n.id.value.clone(),
                loc: Loc::from(&n.id),
                label: n.label.clone().unwrap_or_else(|| n.id.value.clone()),
                has_say: n.say.is_some(),
                kind: kind.expect("no errors, so every kind compiled"),
                next: next.expect("no errors, so every successor compiled"),
            })
            .collect();
        let mut flow = Flow {
            version: sources.version(),
            script_id: raw.script.value.clone(),
            lang,
            title: raw.title.clone(),
            nodes,
            start,
            tags,
            commands: Commands { words },
            messages: Messages::new(lang, overrides),
            routing,
            follow_up: raw.follow_up,
            sources: sources.clone(),
            prepared: crate::render::Prepared::new(&hb),
            templates: hb,
        };
        self.graph_checks(&mut flow, &raw);
        self.template_checks(&flow);
        if self.d.has_errors() {
            return None;
        }
        Some(flow)
    }

    fn give_up(&mut self, g: &Spanned<String>) -> GiveUp {
        match g.value.as_str() {
            "skip" => GiveUp::Skip,
            "handoff" => GiveUp::Handoff,
            "end" => GiveUp::End,
            other => {
                self.d.error(
                    g,
                    "bad-give-up",
                    (
                        format!("unknown on_give_up `{other}`"),
                        format!("不明な on_give_up `{other}` です"),
                    ),
                    bi!(
                        "use skip, handoff or end",
                        "skip, handoff, end のいずれかを使ってください"
                    ),
                );
                GiveUp::Handoff
            }
        }
    }

    fn node_kind(
        &mut self,
        n: &RawNode,
        default_retries: u8,
        default_give_up: GiveUp,
    ) -> Option<NodeKind> {
        let shapes = [n.ask.is_some(), n.route, n.confirm, n.end.is_some()];
        if shapes.iter().filter(|x| **x).count() > 1 {
            self.d.error(
                &n.id,
                "mixed-node",
                (
                    format!("node `{}` mixes ask, route, confirm and end", n.id.value),
                    format!(
                        "ノード `{}` に ask・route・confirm・end が混在しています",
                        n.id.value
                    ),
                ),
                bi!(
                    "split it into one node per step",
                    "ステップごとに別のノードに分けてください"
                ),
            );
            return None;
        }
        if let Some(end) = &n.end {
            let status = match end.value.as_str() {
                "completed" => EndStatus::Completed,
                "declined" => EndStatus::Declined,
                "cancelled" => EndStatus::Cancelled,
                "handoff" => EndStatus::Handoff,
                other => {
                    self.d.error(
                        end,
                        "bad-end",
                        (
                            format!("unknown end status `{other}`"),
                            format!("不明な終了状態 `{other}` です"),
                        ),
                        bi!(
                            "use completed, declined, cancelled or handoff",
                            "completed, declined, cancelled, handoff のいずれかを使ってください"
                        ),
                    );
                    return None;
                }
            };
            return Some(NodeKind::End(status));
        }
        if n.route {
            return Some(NodeKind::Route);
        }
        if n.confirm {
            if n.text.is_none() {
                self.missing(n, "text");
            }
            return Some(NodeKind::Confirm);
        }
        let Some(ask) = &n.ask else {
            if n.say.is_none() && n.branch.is_none() {
                self.d.error(
                    &n.id,
                    "empty-node",
                    (format!("node `{}` does nothing", n.id.value), format!("ノード `{}` は何もしません", n.id.value)),
                    bi!("give it `say:`, `ask:`, `route: true`, `confirm: true`, `end:` or a `branch:`", "`say:`・`ask:`・`route: true`・`confirm: true`・`end:`・`branch:` のいずれかを書いてください"),
                );
                return None;
            }
            return Some(NodeKind::Say);
        };
        if n.text.is_none() {
            self.missing(n, "text");
        }
        let ty = match ask.value.as_str() {
            "choice" | "multi" => {
                let options = self.options(n)?;
                if ask.value == "choice" {
                    AnswerType::Choice { options }
                } else {
                    let count = options.len() as u32;
                    let min = n.min_choices.as_ref().map(|m| m.value).unwrap_or(1);
                    let max = n.max_choices.as_ref().map(|m| m.value).unwrap_or(count);
                    if min > max || max > count {
                        self.d.error(
                            n.max_choices.as_ref().or(n.min_choices.as_ref()).map(Loc::from).unwrap_or(Loc::from(&n.id)),
                            "bad-choices-range",
                            (format!("min_choices {min} / max_choices {max} do not fit {count} options"), format!("min_choices {min}・max_choices {max} が選択肢の数 {count} と合いません")),
                            bi!("keep 1 <= min_choices <= max_choices <= number of options", "1 <= min_choices <= max_choices <= 選択肢の数 にしてください"),
                        );
                    }
                    AnswerType::Multi { options, min, max }
                }
            }
            "yesno" => AnswerType::YesNo,
            "consent" => AnswerType::Consent {
                shares: n.shares.clone().unwrap_or_default(),
            },
            "text" => {
                let min = n.min.as_ref().map(|m| m.value as usize).unwrap_or(1);
                let max = n.max.as_ref().map(|m| m.value as usize).unwrap_or(2000);
                if max > crate::engine::MAX_ANSWER_CHARS {
                    self.d.error(
                        n.max.as_ref().unwrap(),
                        "text-too-long",
                        (
                            format!(
                                "max {max} is over the limit of {} characters",
                                crate::engine::MAX_ANSWER_CHARS
                            ),
                            format!(
                                "max {max} は上限 {} 文字を超えています",
                                crate::engine::MAX_ANSWER_CHARS
                            ),
                        ),
                        (
                            format!("use at most {}", crate::engine::MAX_ANSWER_CHARS),
                            format!("{} 以下にしてください", crate::engine::MAX_ANSWER_CHARS),
                        ),
                    );
                }
                let pattern = n.pattern.as_ref().and_then(|p| self.regex(p));
                AnswerType::Text { min, max, pattern }
            }
            "number" => AnswerType::Number {
                min: n.min.as_ref().map(|m| m.value),
                max: n.max.as_ref().map(|m| m.value),
                unit: n.unit.as_ref().map(|u| u.value.clone()),
            },
            "prefecture" => AnswerType::Prefecture,
            "email" => AnswerType::Email,
            "phone" => AnswerType::Phone,
            "date" => AnswerType::Date { future: n.future },
            other => {
                let all = [
                    "choice",
                    "multi",
                    "yesno",
                    "consent",
                    "text",
                    "number",
                    "prefecture",
                    "email",
                    "phone",
                    "date",
                ];
                let dym = super::diag::did_you_mean(closest(other, all));
                self.d.error(
                    ask,
                    "bad-type",
                    (
                        format!("unknown answer type `{other}`"),
                        format!("不明な回答タイプ `{other}` です"),
                    ),
                    (
                        format!("{}use one of: {}", dym.0, all.join(", ")),
                        format!("{}次のいずれかを使ってください: {}", dym.1, all.join(", ")),
                    ),
                );
                return None;
            }
        };
        if n.options.is_some()
            && !matches!(ty, AnswerType::Choice { .. } | AnswerType::Multi { .. })
        {
            self.d.warn(
                &n.id,
                "unused-options",
                (
                    format!(
                        "`options:` on node `{}` is ignored for `ask: {}`",
                        n.id.value,
                        ty.name()
                    ),
                    format!(
                        "ノード `{}` の `options:` は `ask: {}` では使われません",
                        n.id.value,
                        ty.name()
                    ),
                ),
                bi!(
                    "use `ask: choice` or `ask: multi`, or remove the options",
                    "`ask: choice` か `ask: multi` にするか、options を削除してください"
                ),
            );
        }
        let on_give_up = n
            .on_give_up
            .as_ref()
            .map(|g| self.give_up(g))
            .unwrap_or(default_give_up);
        let ty_name = ty.name();
        Some(NodeKind::Ask(Question {
            ty,
            has_retry: n.retry.is_some(),
            max_retries: n.max_retries.unwrap_or(default_retries),
            on_give_up,
            optional: n.optional,
            editable: n.editable.unwrap_or(true) && !matches!(ty_name, "consent"),
        }))
    }

    fn missing(&mut self, n: &RawNode, key: &str) {
        self.d.error(
            &n.id,
            "missing-key",
            (
                format!("node `{}` needs `{key}:`", n.id.value),
                format!("ノード `{}` に `{key}:` が必要です", n.id.value),
            ),
            (
                format!("add `{key}:` with the text shown to the owner"),
                format!("相談者に表示する文を `{key}:` に書いてください"),
            ),
        );
    }

    fn options(&mut self, n: &RawNode) -> Option<Vec<ChoiceOption>> {
        let Some(raw) = &n.options else {
            self.missing(n, "options");
            return None;
        };
        if raw.len() < 2 {
            self.d.error(
                &n.id,
                "too-few-options",
                (
                    format!("node `{}` has fewer than two options", n.id.value),
                    format!("ノード `{}` の選択肢が2つ未満です", n.id.value),
                ),
                bi!(
                    "offer at least two options, or use `ask: yesno` or `ask: text`",
                    "選択肢を2つ以上にするか、`ask: yesno` や `ask: text` を使ってください"
                ),
            );
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for o in raw {
            if !valid_ident(&o.id.value) {
                self.d.error(
                    &o.id,
                    "bad-option-id",
                    (
                        format!("option id `{}` is not a valid name", o.id.value),
                        format!("選択肢 id `{}` は使えない名前です", o.id.value),
                    ),
                    bi!(
                        "use lowercase letters, digits and '_', e.g. side_job",
                        "英小文字・数字・'_' を使ってください（例: side_job）"
                    ),
                );
            }
            if !seen.insert(o.id.value.clone()) {
                self.d.error(
                    &o.id,
                    "duplicate-option",
                    (
                        format!("option id `{}` is used twice", o.id.value),
                        format!("選択肢 id `{}` が重複しています", o.id.value),
                    ),
                    bi!(
                        "give every option its own id",
                        "選択肢ごとに別の id を付けてください"
                    ),
                );
            }
            let mut folded = vec![fold_for_match(&o.label.value), fold_for_match(&o.id.value)];
            folded.extend(o.aliases.iter().map(|a| fold_for_match(a)));
            let mut keys = vec![fold_keep_spaces(&o.label.value)];
            keys.extend(o.aliases.iter().map(|a| fold_keep_spaces(a)));
            out.push(ChoiceOption {
                id: o.id.value.clone(),
                label: o.label.value.clone(),
                folded,
                keys,
            });
        }
        Some(out)
    }

    fn regex(&mut self, p: &Spanned<String>) -> Option<Regex> {
        match regex::RegexBuilder::new(&p.value)
            .size_limit(1 << 20)
            .build()
        {
            Ok(r) => Some(r),
            Err(e) => {
                let first = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                self.d.error(
                    p,
                    "bad-regex",
                    (format!("invalid regular expression `{}`: {first}", p.value), format!("正規表現 `{}` が正しくありません{}", p.value, regex_reason_ja(&first))),
                    bi!(
                        "escape special characters such as ( ) [ ] . * + ? with a backslash, and close every bracket",
                        "( ) [ ] . * + ? などの記号はバックスラッシュでエスケープし、括弧は必ず閉じてください"
                    ),
                );
                None
            }
        }
    }

    fn unknown_node(&mut self, r: &Spanned<String>, index: &HashMap<String, NodeIx>) {
        let dym = closest(&r.value, index.keys().map(String::as_str));
        let (he, hj) = match dym {
            Some(c) => (
                format!("did you mean `{c}`?"),
                format!("`{c}` のことですか？"),
            ),
            None => (
                "use the id of a node defined under `nodes:`".into(),
                "`nodes:` で定義したノードの id を指定してください".into(),
            ),
        };
        self.d.error(
            r,
            "unknown-node",
            (
                format!("there is no node `{}`", r.value),
                format!("ノード `{}` は存在しません", r.value),
            ),
            (he, hj),
        );
    }

    fn next(&mut self, n: &RawNode, is_end: bool, names: &Names) -> Option<Next> {
        if is_end {
            if n.next.is_some() || n.branch.is_some() {
                self.d.error(
                    &n.id,
                    "end-has-next",
                    (
                        format!("end node `{}` has a `next:` or `branch:`", n.id.value),
                        format!(
                            "終了ノード `{}` に `next:` か `branch:` があります",
                            n.id.value
                        ),
                    ),
                    bi!(
                        "remove it: the conversation stops at an end node",
                        "削除してください。会話は終了ノードで終わります"
                    ),
                );
            }
            return Some(Next::Stop);
        }
        match (&n.next, &n.branch) {
            (Some(_), Some(_)) => {
                self.d.error(
                    &n.id,
                    "next-and-branch",
                    (
                        format!("node `{}` has both `next:` and `branch:`", n.id.value),
                        format!(
                            "ノード `{}` に `next:` と `branch:` の両方があります",
                            n.id.value
                        ),
                    ),
                    bi!(
                        "use `branch:` with `default:` instead of `next:`",
                        "`next:` の代わりに `branch:` と `default:` を使ってください"
                    ),
                );
                None
            }
            (Some(t), None) => {
                if n.default.is_some() {
                    self.d.warn(
                        &n.id,
                        "default-without-branch",
                        bi!(
                            "`default:` is ignored without `branch:`",
                            "`branch:` がないので `default:` は使われません"
                        ),
                        bi!("remove `default:`", "`default:` を削除してください"),
                    );
                }
                match names.index.get(&t.value) {
                    Some(&ix) => Some(Next::Goto(ix)),
                    None => {
                        self.unknown_node(t, names.index);
                        None
                    }
                }
            }
            (None, Some(arms)) => {
                let mut out = Vec::new();
                let mut ok = true;
                for a in arms {
                    let c = self.cond(&a.when, names, Loc::from(&a.goto));
                    let t = names.index.get(&a.goto.value).copied();
                    if t.is_none() {
                        self.unknown_node(&a.goto, names.index);
                    }
                    match (c, t) {
                        (Some(c), Some(t)) => out.push((c, t)),
                        _ => ok = false,
                    }
                }
                let default = match &n.default {
                    None => {
                        self.d.error(
                            &n.id,
                            "no-default",
                            (format!("the branch of node `{}` has no `default:`", n.id.value), format!("ノード `{}` の分岐に `default:` がありません", n.id.value)),
                            bi!(
                                "add `default: <node id>` for answers that match no condition",
                                "どの条件にも合わない場合の行き先を `default: <ノードid>` で指定してください"
                            ),
                        );
                        None
                    }
                    Some(d) => match names.index.get(&d.value) {
                        Some(&ix) => Some(ix),
                        None => {
                            self.unknown_node(d, names.index);
                            None
                        }
                    },
                };
                match (ok, default) {
                    (true, Some(default)) => Some(Next::Branch { arms: out, default }),
                    _ => None,
                }
            }
            (None, None) => {
                self.d.error(
                    &n.id,
                    "dead-end",
                    (
                        format!(
                            "node `{}` has no `next:` and is not an end node",
                            n.id.value
                        ),
                        format!(
                            "ノード `{}` に `next:` がなく、終了ノードでもありません",
                            n.id.value
                        ),
                    ),
                    bi!(
                        "add `next: <node id>`, a `branch:`, or make it `end: completed`",
                        "`next: <ノードid>` か `branch:` を書くか、`end: completed` にしてください"
                    ),
                );
                None
            }
        }
    }

    fn cond(&mut self, c: &RawCond, names: &Names, at: Loc) -> Option<Cond> {
        compile_cond(c, names, self.d, at)
    }

    fn template(
        &mut self,
        hb: &mut Handlebars<'static>,
        name: &str,
        s: &Spanned<String>,
        known: &dyn Fn(&str) -> bool,
        node: Option<usize>,
    ) {
        let at = Loc::from(s);
        match Template::compile(&s.value) {
            Ok(t) => {
                let mut vars = Vec::new();
                collect_vars(&t, false, &mut vars);
                for (var, (tl, tc)) in vars {
                    if !known(&var) {
                        let loc = template_pos(self.src, at, tl, tc);
                        self.d.error(
                            loc,
                            "unknown-variable",
                            (
                                format!("template uses `{var}`, which no question defines"),
                                format!("テンプレートの `{var}` を定義している質問がありません"),
                            ),
                            (
                                format!(
                                    "use the id of a question, or one of: {}",
                                    RESERVED_VARS.join(", ")
                                ),
                                format!(
                                    "質問の id か、次のいずれかを使ってください: {}",
                                    RESERVED_VARS.join("、")
                                ),
                            ),
                        );
                    }
                }
                for p in super::tmpl::check(&t) {
                    let loc = template_pos(self.src, at, p.pos.0, p.pos.1);
                    let (code, msg, hint) = template_problem(&p.kind);
                    self.d.error(loc, code, msg, hint);
                }
                let mut unguarded = Vec::new();
                super::tmpl::unguarded_vars(
                    &t.elements,
                    &t.mapping,
                    &mut Vec::new(),
                    &mut unguarded,
                );
                self.templates.push(TemplateInfo {
                    name: name.to_string(),
                    at,
                    node,
                    unguarded,
                });
                hb.register_template(name, t);
            }
            Err(e) => {
                use super::tmpl::SyntaxProblem as P;
                let (pos, msg, hint): ((usize, usize), Bi, Bi) = match super::tmpl::scan_blocks(&s.value) {
                    Some(P::UnclosedBlock { name, at }) => (
                        at,
                        (
                            format!("`{{{{#{name}}}}}` is never closed"),
                            format!("`{{{{#{name}}}}}` が閉じられていません"),
                        ),
                        (
                            format!("add `{{{{/{name}}}}}` where the block should end"),
                            format!("ブロックの終わりに `{{{{/{name}}}}}` を書いてください"),
                        ),
                    ),
                    Some(P::UnclosedTag { at }) => (
                        at,
                        bi!("this `{{` is never closed", "この `{{` が閉じられていません"),
                        bi!("close it with `}}`", "`}}` で閉じてください"),
                    ),
                    Some(P::StrayClose { name, at }) => (
                        at,
                        (
                            format!("`{{{{/{name}}}}}` closes a block that was never opened"),
                            format!("`{{{{/{name}}}}}` に対応する `{{{{#{name}}}}}` がありません"),
                        ),
                        (
                            format!("delete it, or open the block with `{{{{#{name} …}}}}` before it"),
                            format!("削除するか、その前に `{{{{#{name} …}}}}` でブロックを始めてください"),
                        ),
                    ),
                    Some(P::Mismatch { open, open_at, close, at: close_at }) => {
                        let line = template_pos(self.src, at, open_at.0, open_at.1).line;
                        (
                        close_at,
                        (
                            format!("`{{{{/{close}}}}}` closes `{{{{#{open}}}}}` (opened on line {line}), which needs `{{{{/{open}}}}}`"),
                            format!("`{{{{/{close}}}}}` が {line} 行目の `{{{{#{open}}}}}` を閉じようとしています。`{{{{/{open}}}}}` が必要です"),
                        ),
                        (
                            format!("close blocks in the reverse order they were opened: `{{{{/{open}}}}}` first"),
                            format!("ブロックは開いた順と逆に閉じてください。先に `{{{{/{open}}}}}` です"),
                        ),
                    )
                    }
                    // The tags balance, so the error is inside one tag and
                    // handlebars' own position is right. Its wording lists
                    // parser rules, which helps no administrator.
                    None => (
                        e.pos().unwrap_or((1, 1)),
                        bi!("this tag cannot be read", "このタグを読み取れません"),
                        bi!(
                            "write a tag as `{{question_id}}`, `{{#if question_id}}…{{/if}}` or `{{default question_id \"text\"}}`; quotes must be closed",
                            "タグは `{{question_id}}`、`{{#if question_id}}…{{/if}}`、`{{default question_id \"文字\"}}` の形で書き、引用符は閉じてください"
                        ),
                    ),
                };
                let loc = template_pos(self.src, at, pos.0, pos.1);
                self.d.error(loc, "bad-template", msg, hint);
            }
        }
    }

    /// Renders every template against a sample context in which every
    /// question is answered, a route is chosen and every tag is set, and
    /// against an empty one, so that anything handlebars would refuse at
    /// run time is refused now. Then warns about answers a template shows
    /// that are not given on some path reaching it: the text would show
    /// nothing in their place. That is a warning, not an error, because
    /// the text still reads and scripts may mean it (an optional detail),
    /// whereas a template that fails to render would stop the owner.
    fn template_checks(&mut self, flow: &Flow) {
        let full = super::tmpl::sample_context(flow, true);
        let empty = super::tmpl::sample_context(flow, false);
        for t in &self.templates {
            for ctx in [&full, &empty] {
                if let Err(e) = flow.templates.render(&t.name, ctx) {
                    let pos = match (e.line_no, e.column_no) {
                        (Some(l), Some(c)) => (l, c),
                        _ => (1, 1),
                    };
                    let reason = e.reason().to_string();
                    self.d.error(
                        template_pos(self.src, t.at, pos.0, pos.1),
                        "template-fails",
                        (
                            format!("this template fails when it is shown: {reason}"),
                            format!("このテンプレートは表示するときに失敗します（{reason}）"),
                        ),
                        bi!(
                            "use only the helpers and values listed in dialogs/README.md",
                            "dialogs/README.md に載っているヘルパーと値だけを使ってください"
                        ),
                    );
                    break;
                }
            }
        }
        let given = super::tmpl::answered_on_every_path(flow);
        let confirm: Vec<usize> = (0..flow.nodes.len())
            .filter(|&i| matches!(flow.nodes[i].kind, NodeKind::Confirm))
            .collect();
        // What holds at the places a template is shown, on the paths that
        // leave question `from` answered (for `{{#if from}}` blocks).
        let mut after: HashMap<usize, Vec<Option<HashSet<String>>>> = HashMap::new();
        let holds_at =
            |sets: &[Option<HashSet<String>>], node: Option<usize>| -> Vec<HashSet<String>> {
                match node {
                    Some(i) => sets[i].iter().cloned().collect(),
                    None => confirm.iter().filter_map(|&i| sets[i].clone()).collect(),
                }
            };
        for t in &self.templates {
            let sets = holds_at(&given, t.node);
            if sets.is_empty() {
                continue;
            }
            let mut warned = HashSet::new();
            for (var, (tl, tc), guards) in &t.unguarded {
                let is_answer = flow.index_of(var).is_some();
                // A follow-up dialog starts with its route set.
                let routed = var == "route" && !flow.follow_up;
                if !(is_answer || routed) || sets.iter().all(|s| s.contains(var)) {
                    continue;
                }
                // Inside `{{#if g}}`, only paths on which `g` was answered
                // count: `{{#if talent_role}}…{{talent_duties}}` is fine
                // when every path past `talent_role` asks `talent_duties`.
                let covered = guards.iter().any(|g| {
                    let Some(gi) = flow.index_of(g) else {
                        return false;
                    };
                    let gi = gi as usize;
                    let from = after.entry(gi).or_insert_with(|| {
                        let mut init = given[gi].clone().unwrap_or_default();
                        init.insert(g.clone());
                        super::tmpl::answered_from(flow, gi, init)
                    });
                    let sets = holds_at(from, t.node);
                    sets.iter().all(|s| s.contains(var))
                });
                if covered || !warned.insert(var.clone()) {
                    continue;
                }
                let loc = template_pos(self.src, t.at, *tl, *tc);
                let (msg, hint) = if var == "route" {
                    (
                        bi!(
                            "`route` is shown here, but a path reaches this text before any `route: true` node; it would show nothing",
                            "ここで `route` を表示していますが、`route: true` のノードを通らずにこの文に到達する経路があり、その場合は何も表示されません"
                        ),
                        bi!(
                            "move the text after the route node, or wrap it in `{{#if route}}…{{/if}}`",
                            "文を振り分けノードの後に移すか、`{{#if route}}…{{/if}}` で囲んでください"
                        ),
                    )
                } else {
                    (
                        (
                            format!("`{var}` is shown here, but a path reaches this text without an answer to `{var}` (not asked yet, optional or skipped); it would show nothing"),
                            format!("ここで `{var}` を表示していますが、`{var}` に回答しないままこの文に到達する経路があり（未質問・任意・スキップ）、その場合は何も表示されません"),
                        ),
                        (
                            format!("write `{{{{default {var} \"(not answered)\"}}}}`, wrap it in `{{{{#if {var}}}}}…{{{{/if}}}}`, or ask `{var}` earlier"),
                            format!("`{{{{default {var} \"（未回答）\"}}}}` と書くか、`{{{{#if {var}}}}}…{{{{/if}}}}` で囲むか、`{var}` を先に質問してください"),
                        ),
                    )
                };
                self.d.warn(loc, "maybe-unanswered", msg, hint);
            }
        }
    }

    /// Reachability, dead ends and consent placement.
    fn graph_checks(&mut self, flow: &mut Flow, raw: &RawScript) {
        let n = flow.nodes.len();
        let succ = |ix: usize| -> Vec<usize> {
            match &flow.nodes[ix].next {
                Next::Stop => vec![],
                Next::Goto(t) => vec![*t as usize],
                Next::Branch { arms, default } => arms
                    .iter()
                    .map(|(_, t)| *t as usize)
                    .chain([*default as usize])
                    .collect(),
            }
        };
        let reach = |from: usize, blocked: &dyn Fn(usize) -> bool| {
            let mut seen = vec![false; n];
            let mut stack = vec![from];
            while let Some(i) = stack.pop() {
                if seen[i] {
                    continue;
                }
                seen[i] = true;
                if blocked(i) {
                    continue;
                }
                stack.extend(succ(i));
            }
            seen
        };
        let reachable = reach(flow.start as usize, &|_| false);
        for (i, r) in reachable.iter().enumerate() {
            if !r {
                self.d.warn(
                    &raw.nodes[i].id,
                    "unreachable",
                    (
                        format!("node `{}` can never be reached", flow.nodes[i].id),
                        format!("ノード `{}` にはどこからも到達できません", flow.nodes[i].id),
                    ),
                    bi!(
                        "point a `next:`, `goto:` or `default:` at it, or delete it",
                        "どこかの `next:`・`goto:`・`default:` から指すか、削除してください"
                    ),
                );
            }
        }
        // A node from which no end node can be reached traps the owner.
        let mut can_finish = vec![false; n];
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..n {
                if !can_finish[i]
                    && (matches!(flow.nodes[i].kind, NodeKind::End(_))
                        || succ(i).into_iter().any(|s| can_finish[s]))
                {
                    can_finish[i] = true;
                    changed = true;
                }
            }
        }
        // Report where the owner first gets trapped, not every node of the
        // trap: the start node, or a trapped node entered from a node that
        // can still finish.
        let trapped: Vec<usize> = (0..n).filter(|&i| reachable[i] && !can_finish[i]).collect();
        for &i in &trapped {
            let entry = i == flow.start as usize
                || (0..n).any(|p| reachable[p] && can_finish[p] && succ(p).contains(&i));
            if entry {
                self.d.error(
                    &raw.nodes[i].id,
                    "no-way-out",
                    (
                        format!(
                            "from node `{}` the conversation can never finish",
                            flow.nodes[i].id
                        ),
                        format!(
                            "ノード `{}` から先、会話が終わることがありません",
                            flow.nodes[i].id
                        ),
                    ),
                    bi!(
                        "make sure every loop has a branch leading to an `end:` node",
                        "ループには必ず `end:` ノードへ向かう分岐を作ってください"
                    ),
                );
            }
        }
        // A loop made only of nodes that wait for no input would spin forever.
        for i in 0..n {
            if waits(&flow.nodes[i].kind) {
                continue;
            }
            let silent = reach(i, &|j| waits(&flow.nodes[j].kind));
            let back_to_self =
                (0..n).any(|j| silent[j] && !waits(&flow.nodes[j].kind) && succ(j).contains(&i));
            if back_to_self && reachable[i] {
                self.d.error(
                    &raw.nodes[i].id,
                    "silent-loop",
                    (
                        format!("node `{}` is in a loop that asks nothing", flow.nodes[i].id),
                        format!(
                            "ノード `{}` が質問を含まないループの中にあります",
                            flow.nodes[i].id
                        ),
                    ),
                    bi!(
                        "put a question in the loop or break it",
                        "ループの中に質問を入れるか、ループをなくしてください"
                    ),
                );
                break;
            }
        }
        // Consent must come after routing, so the owner is told who receives
        // the case before agreeing. A follow-up script's recipient is set
        // before it starts (the case's step-5 hub), so it has no route
        // node, and a route node there would choose anew from answers it
        // does not ask.
        if flow.follow_up {
            for i in 0..n {
                if matches!(flow.nodes[i].kind, NodeKind::Route) {
                    self.d.error(
                        &raw.nodes[i].id,
                        "route-in-follow-up",
                        bi!(
                            "a follow-up script cannot have a `route: true` node",
                            "フォローアップのスクリプトには `route: true` のノードを置けません"
                        ),
                        bi!(
                            "remove it: the follow-up answers go to the case's step-5 hub (`follow_up:` in routing.yaml)",
                            "削除してください。フォローアップの回答は案件の定着支援（STEP5）担当拠点（routing.yaml の `follow_up:`）に送られます"
                        ),
                    );
                }
            }
        }
        for i in (0..n).filter(|_| !flow.follow_up) {
            if let NodeKind::Ask(Question {
                ty: AnswerType::Consent { .. },
                ..
            }) = flow.nodes[i].kind
            {
                let before = reach(flow.start as usize, &|j| {
                    matches!(flow.nodes[j].kind, NodeKind::Route)
                });
                if before[i] {
                    self.d.error(
                        &raw.nodes[i].id,
                        "consent-before-route",
                        (format!("consent question `{}` can be reached before any `route: true` node", flow.nodes[i].id), format!("同意の質問 `{}` に、`route: true` のノードを通らずに到達できます", flow.nodes[i].id)),
                        bi!(
                            "place a `route: true` node before it so the owner is told who will receive the case",
                            "送付先を伝えてから同意を得るため、その前に `route: true` のノードを置いてください"
                        ),
                    );
                }
            }
        }
        self.platform_limits(flow, raw);
    }
}

/// Discord's component limits, which the Discord adapter relies on.
pub mod limits {
    /// Options in one string select.
    pub const SELECT_OPTIONS: usize = 25;
    /// Characters in a button label.
    pub const BUTTON_LABEL: usize = 80;
    /// Characters in a select option label.
    pub const SELECT_LABEL: usize = 100;
    /// Characters in a component's custom id.
    pub const CUSTOM_ID: usize = 100;
    /// What an adapter adds to `node` and `option` ids in a custom id
    /// (`a:` prefix, separators and a turn marker).
    pub const CUSTOM_ID_OVERHEAD: usize = 24;
    /// Buttons per message (5 rows of 5); longer lists use a select.
    pub const BUTTONS: usize = 25;
}

impl Compiler<'_> {
    fn platform_limits(&mut self, flow: &Flow, raw: &RawScript) {
        for (i, node) in flow.nodes.iter().enumerate() {
            let NodeKind::Ask(q) = &node.kind else {
                continue;
            };
            let options = q.ty.options();
            let at = Loc::from(&raw.nodes[i].id);
            if options.len() > limits::SELECT_OPTIONS {
                self.d.error(
                    at,
                    "too-many-options",
                    (
                        format!(
                            "question `{}` has {} options; Discord shows at most {} in a list",
                            node.id,
                            options.len(),
                            limits::SELECT_OPTIONS
                        ),
                        format!(
                            "質問 `{}` の選択肢が {} 個あります。Discord のリストは {} 個まで",
                            node.id,
                            options.len(),
                            limits::SELECT_OPTIONS
                        ),
                    ),
                    bi!(
                        "split the question in two (e.g. a category first), or use `ask: text`",
                        "質問を2段階に分けるか（先に分類を選ぶなど）、`ask: text` にしてください"
                    ),
                );
            }
            for (k, o) in options.iter().enumerate() {
                let loc = raw.nodes[i]
                    .options
                    .as_ref()
                    .and_then(|os| os.get(k))
                    .map(|ro| Loc::from(&ro.label))
                    .unwrap_or(at);
                let chars = o.label.chars().count();
                if chars > limits::SELECT_LABEL {
                    self.d.error(
                        loc,
                        "label-too-long",
                        (format!("option `{}` has a label of {chars} characters; Discord shows at most {}", o.id, limits::SELECT_LABEL), format!("選択肢 `{}` のラベルが {chars} 文字あります。Discord は {} 文字まで", o.id, limits::SELECT_LABEL)),
                        bi!("shorten the label; put explanations in the question text", "ラベルを短くし、説明は質問文に書いてください"),
                    );
                } else if chars > limits::BUTTON_LABEL {
                    self.d.warn(
                        loc,
                        "long-label",
                        (format!("option `{}` has a label of {chars} characters; Discord buttons show at most {}, so a list is used instead", o.id, limits::BUTTON_LABEL), format!("選択肢 `{}` のラベルが {chars} 文字あります。Discord のボタンは {} 文字までのため、リスト表示になります", o.id, limits::BUTTON_LABEL)),
                        bi!("shorten the label to use buttons", "ボタンで表示するにはラベルを短くしてください"),
                    );
                }
                let id_len = node.id.len() + o.id.len() + limits::CUSTOM_ID_OVERHEAD;
                if id_len > limits::CUSTOM_ID {
                    let oloc = raw.nodes[i]
                        .options
                        .as_ref()
                        .and_then(|os| os.get(k))
                        .map(|ro| Loc::from(&ro.id))
                        .unwrap_or(at);
                    self.d.error(
                        oloc,
                        "custom-id-too-long",
                        (format!("question id `{}` plus option id `{}` make a Discord custom id of {id_len} characters; the limit is {}", node.id, o.id, limits::CUSTOM_ID), format!("質問 id `{}` と選択肢 id `{}` を合わせた Discord の custom_id が {id_len} 文字になります。上限は {} 文字", node.id, o.id, limits::CUSTOM_ID)),
                        bi!("use shorter ids (labels can stay long)", "id を短くしてください（ラベルは長くてもかまいません）"),
                    );
                }
            }
        }
    }
}

/// The regex library's reason in Japanese, for the common mistakes; its
/// English wording is kept out of Japanese messages.
fn regex_reason_ja(en: &str) -> &'static str {
    let en = en.to_ascii_lowercase();
    if en.contains("unclosed group") || en.contains("unopened group") {
        "（丸括弧 ( ) の対応がとれていません）"
    } else if en.contains("unclosed character class") {
        "（角括弧 [ ] が閉じられていません）"
    } else if en.contains("repetition") {
        "（* + ? { } の前に繰り返す文字がありません）"
    } else if en.contains("size limit") {
        "（パターンが大きすぎます）"
    } else if en.contains("escape") {
        "（バックスラッシュ \\ の使い方が正しくありません）"
    } else {
        ""
    }
}

/// `yes` or `no` when the word means it (はい, いいえ, 同意する, y…).
fn yes_or_no(text: &str) -> Option<&'static str> {
    let f = fold_for_match(text);
    if super::yes_words().iter().any(|w| fold_for_match(w) == f) {
        Some("yes")
    } else if super::no_words().iter().any(|w| fold_for_match(w) == f) {
        Some("no")
    } else {
        None
    }
}

/// The option a value names by meaning: one whose label or alias it is,
/// or, for a yes/no word, the option with that id.
fn option_by_meaning<'o>(text: &str, options: &'o [ChoiceOption]) -> Option<&'o str> {
    let f = fold_for_match(text);
    if let Some(o) = options.iter().find(|o| o.folded.contains(&f)) {
        return Some(&o.id);
    }
    let word = yes_or_no(text)?;
    options.iter().find(|o| o.id == word).map(|o| o.id.as_str())
}

fn waits(k: &NodeKind) -> bool {
    matches!(k, NodeKind::Ask(_) | NodeKind::Confirm | NodeKind::End(_))
}

fn valid_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 64
}

/// Variables a template reads, with their position in the template. Paths
/// inside `#each` / `#with` blocks are relative to the item and are not
/// checked.
fn collect_vars(t: &Template, nested: bool, out: &mut Vec<(String, (usize, usize))>) {
    for (i, el) in t.elements.iter().enumerate() {
        let pos = t.mapping.get(i).map(|m| (m.0, m.1)).unwrap_or((1, 1));
        let (h, block) = match el {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => (h, false),
            TemplateElement::HelperBlock(h) => (h, true),
            _ => continue,
        };
        let mut params: Vec<&Parameter> = h.params.iter().collect();
        params.extend(h.hash.values());
        match &h.name {
            Parameter::Name(n) if HELPERS.contains(&n.as_str()) => {}
            Parameter::Name(n) if params.is_empty() => {
                if !nested {
                    out.push((first_seg(n), pos))
                }
            }
            Parameter::Path(p) if !nested => out.push((first_seg(&path_raw(p)), pos)),
            _ => {}
        }
        if !nested {
            for p in params {
                if let Parameter::Path(p) = p {
                    out.push((first_seg(&path_raw(p)), pos));
                }
            }
        }
        if block {
            let scoped =
                nested || matches!(&h.name, Parameter::Name(n) if n == "each" || n == "with");
            if let Some(t) = &h.template {
                collect_vars(t, scoped, out);
            }
            if let Some(t) = &h.inverse {
                collect_vars(t, nested, out);
            }
        }
    }
    out.retain(|(v, _)| {
        !v.is_empty() && !v.starts_with('@') && v != "this" && !v.starts_with("..")
    });
}

/// The code, message and hint for a helper problem in a template.
fn template_problem(k: &super::tmpl::ProblemKind) -> (&'static str, Bi, Bi) {
    use super::tmpl::{helper_names, ProblemKind as K};
    match k {
        K::UnknownHelper(name) => (
            "unknown-helper",
            (
                format!("`{name}` is not a template helper, so this text would be empty when shown"),
                format!("`{name}` はテンプレートのヘルパーではないため、この文は表示するときに空になります"),
            ),
            (
                format!("templates cannot format text (bold, upper case…); show a value as `{{{{question_id}}}}` or use one of: {}", helper_names()),
                format!("テンプレートで文字の装飾や変換（太字・大文字など）はできません。値は `{{{{question_id}}}}` の形で表示するか、次のヘルパーを使ってください: {}", helper_names()),
            ),
        ),
        K::Arity { helper, want, got } => {
            let usage = match *helper {
                "default" => "{{default question_id \"（未回答）\"}}",
                "if" | "unless" => "{{#if question_id}}…{{/if}}",
                "each" => "{{#each answers}}…{{/each}}",
                "with" => "{{#with route}}…{{/with}}",
                "not" | "len" => "(not x)",
                _ => "(eq a b)",
            };
            let want_s = if want.0 == want.1 { want.0.to_string() } else { format!("{}–{}", want.0, want.1) };
            (
                "helper-arity",
                (
                    format!("`{helper}` takes {want_s} argument(s), here it has {got}"),
                    format!("`{helper}` の引数は {want_s} 個ですが、ここでは {got} 個です"),
                ),
                (
                    format!("write it as `{usage}`"),
                    format!("`{usage}` の形で書いてください"),
                ),
            )
        }
        K::Usage { helper, block: false } => (
            "helper-usage",
            (
                format!("`{helper}` is a block: it needs `#` and a closing tag"),
                format!("`{helper}` はブロックです。`#` と閉じタグが必要です"),
            ),
            (
                format!("write `{{{{#{helper} …}}}}…{{{{/{helper}}}}}`"),
                format!("`{{{{#{helper} …}}}}…{{{{/{helper}}}}}` と書いてください"),
            ),
        ),
        K::Usage { helper, block: true } => (
            "helper-usage",
            (
                format!("`{helper}` is not a block"),
                format!("`{helper}` はブロックではありません"),
            ),
            (
                format!("write it without `#` and the closing tag: `{{{{{helper} …}}}}`"),
                format!("`#` と閉じタグを外して `{{{{{helper} …}}}}` と書いてください"),
            ),
        ),
        K::DefaultFallback => (
            "helper-arity",
            bi!("the fallback of `default` must be text in quotes", "`default` の代わりの文は引用符で囲んだ文字にしてください"),
            bi!("write `{{default question_id \"（未回答）\"}}`", "`{{default question_id \"（未回答）\"}}` と書いてください"),
        ),
        K::Unsupported(what) => (
            "unsupported-template",
            (
                format!("templates here do not support {what}s"),
                match *what {
                    "partial" => "ここのテンプレートではパーシャル（`{{> …}}`）は使えません".to_string(),
                    "decorator" => "ここのテンプレートではデコレーター（`{{* …}}`）は使えません".to_string(),
                    _ => "ここのテンプレートでは `key=value` 形式の引数は使えません".to_string(),
                },
            ),
            bi!("see the template table in dialogs/README.md", "dialogs/README.md のテンプレートの表を見てください"),
        ),
    }
}

fn path_raw(p: &handlebars::Path) -> String {
    match p {
        handlebars::Path::Relative((_, raw)) => raw.clone(),
        handlebars::Path::Local((_, name, _)) => format!("@{name}"),
    }
}

fn first_seg(s: &str) -> String {
    s.trim_start_matches("./")
        .split(['.', '/', '['])
        .next()
        .unwrap_or("")
        .to_string()
}

/// Compiles a condition (shared by branches and routing rules).
fn compile_cond(c: &RawCond, names: &Names, d: &mut Diags, at: Loc) -> Option<Cond> {
    let subjects = [
        c.answer.is_some(),
        c.tag.is_some(),
        c.all.is_some(),
        c.any.is_some(),
        c.not.is_some(),
        c.small_business.is_some(),
        c.sme.is_some(),
    ];
    let count = subjects.iter().filter(|x| **x).count();
    let here = c
        .answer
        .as_ref()
        .map(Loc::from)
        .or(c.tag.as_ref().map(Loc::from))
        .or(c.small_business.as_ref().map(Loc::from))
        .or(c.sme.as_ref().map(Loc::from))
        .unwrap_or(at);
    if count != 1 {
        d.error(
            here,
            "bad-condition",
            (
                format!("a condition needs exactly one of answer, tag, small_business, sme, all, any, not (found {count})"),
                format!("条件には answer・tag・small_business・sme・all・any・not のどれかひとつが必要です（{count} 個あります）"),
            ),
            bi!("split it with `all: [ ... ]` or `any: [ ... ]`", "`all: [ ... ]` や `any: [ ... ]` で分けてください"),
        );
        return None;
    }
    if let Some(t) = &c.tag {
        if !names.tags.contains(&t.value) {
            let dym =
                super::diag::did_you_mean(closest(&t.value, names.tags.iter().map(String::as_str)));
            d.error(
                t,
                "unknown-tag",
                (
                    format!("there is no tag `{}`", t.value),
                    format!("タグ `{}` は定義されていません", t.value),
                ),
                (
                    format!("{}define it under `tags:` in the script", dym.0),
                    format!("{}スクリプトの `tags:` で定義してください", dym.1),
                ),
            );
            return None;
        }
        return Some(Cond::Tag(t.value.clone()));
    }
    if let Some((size, want)) = c
        .small_business
        .as_ref()
        .map(|w| (Size::SmallBusiness, w))
        .or(c.sme.as_ref().map(|w| (Size::Sme, w)))
    {
        return compile_size(size, want, names, d);
    }
    let list = |cs: &Vec<RawCond>, d: &mut Diags| -> Option<Vec<Cond>> {
        let out: Vec<Option<Cond>> = cs.iter().map(|x| compile_cond(x, names, d, at)).collect();
        out.into_iter().collect()
    };
    if let Some(cs) = &c.all {
        return list(cs, d).map(Cond::All);
    }
    if let Some(cs) = &c.any {
        return list(cs, d).map(Cond::Any);
    }
    if let Some(x) = &c.not {
        return compile_cond(x, names, d, at).map(|x| Cond::Not(Box::new(x)));
    }
    let key = c.answer.as_ref()?;
    let Some(&node) = names.index.get(&key.value) else {
        let dym =
            super::diag::did_you_mean(closest(&key.value, names.index.keys().map(String::as_str)));
        d.error(
            key,
            "unknown-answer",
            (
                format!("there is no question `{}`", key.value),
                format!("質問 `{}` は存在しません", key.value),
            ),
            (
                format!("{}use the id of a question node", dym.0),
                format!("{}質問ノードの id を指定してください", dym.1),
            ),
        );
        return None;
    };
    let Some(ty) = names.kinds[node as usize] else {
        d.error(
            key,
            "not-a-question",
            (
                format!(
                    "node `{}` is not a question, so it has no answer",
                    key.value
                ),
                format!("ノード `{}` は質問ではないので回答がありません", key.value),
            ),
            bi!(
                "use the id of a node with `ask:`",
                "`ask:` のあるノードの id を指定してください"
            ),
        );
        return None;
    };
    let tests = [
        c.equals.is_some(),
        c.in_.is_some(),
        c.includes.is_some(),
        c.lt.is_some(),
        c.le.is_some(),
        c.gt.is_some(),
        c.ge.is_some(),
        c.answered.is_some(),
        c.region.is_some(),
        c.area.is_some(),
    ];
    if tests.iter().filter(|x| **x).count() != 1 {
        d.error(
            key,
            "bad-test",
            bi!(
                "an answer condition needs exactly one test: equals, in, includes, lt, le, gt, ge, answered, region or area",
                "回答の条件には equals・in・includes・lt・le・gt・ge・answered・region・area のどれかひとつが必要です"
            ),
            bi!("use `all:` to combine several tests", "複数の条件は `all:` で組み合わせてください"),
        );
        return None;
    }
    let mk = |test| {
        Some(Cond::Answer {
            node,
            key: key.value.clone(),
            test,
        })
    };
    let value = |v: &Spanned<RawScalar>, d: &mut Diags| -> Option<String> {
        check_value(ty, v, &key.value, d)
    };
    if let Some(v) = &c.equals {
        return value(v, d).and_then(|s| mk(Test::Equals(s)));
    }
    if let Some(vs) = &c.in_ {
        let out: Option<Vec<String>> = vs
            .iter()
            .map(|v| value(v, d))
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        return out.and_then(|l| mk(Test::In(l)));
    }
    if let Some(v) = &c.includes {
        if !matches!(ty, AnswerType::Multi { .. }) {
            d.error(
                v,
                "includes-not-multi",
                (
                    format!(
                        "`includes` needs a multiple-choice question, `{}` is `{}`",
                        key.value,
                        ty.name()
                    ),
                    format!(
                        "`includes` は複数選択の質問に使います。`{}` は `{}` です",
                        key.value,
                        ty.name()
                    ),
                ),
                bi!("use `equals` instead", "代わりに `equals` を使ってください"),
            );
            return None;
        }
        return value(v, d).and_then(|s| mk(Test::Includes(s)));
    }
    let num = |n: &Spanned<f64>, d: &mut Diags| -> Option<f64> {
        if matches!(ty, AnswerType::Number { .. }) {
            Some(n.value)
        } else {
            d.error(
                n,
                "compare-not-number",
                (
                    format!(
                        "`{}` is a `{}` question; only numbers can be compared",
                        key.value,
                        ty.name()
                    ),
                    format!(
                        "`{}` は `{}` の質問です。大小比較は数値の質問だけに使えます",
                        key.value,
                        ty.name()
                    ),
                ),
                bi!("use `equals` or `in`", "`equals` か `in` を使ってください"),
            );
            None
        }
    };
    if let Some(n) = &c.lt {
        return num(n, d).and_then(|n| mk(Test::Lt(n)));
    }
    if let Some(n) = &c.le {
        return num(n, d).and_then(|n| mk(Test::Le(n)));
    }
    if let Some(n) = &c.gt {
        return num(n, d).and_then(|n| mk(Test::Gt(n)));
    }
    if let Some(n) = &c.ge {
        return num(n, d).and_then(|n| mk(Test::Ge(n)));
    }
    if let Some(a) = c.answered {
        return mk(Test::Answered(a));
    }
    if let Some(a) = &c.area {
        if !matches!(ty, AnswerType::Prefecture) {
            d.error(
                a,
                "area-not-prefecture",
                (
                    format!(
                        "`area` needs a prefecture question, `{}` is `{}`",
                        key.value,
                        ty.name()
                    ),
                    format!(
                        "`area` は都道府県の質問に使います。`{}` は `{}` です",
                        key.value,
                        ty.name()
                    ),
                ),
                bi!(
                    "point `answer:` at the prefecture question",
                    "`answer:` に都道府県の質問を指定してください"
                ),
            );
            return None;
        }
        return crate::routing::areas::resolve(a, names.areas, d).and_then(|codes| {
            mk(Test::Area {
                name: a.value.clone(),
                codes,
            })
        });
    }
    if let Some(r) = &c.region {
        if !matches!(ty, AnswerType::Prefecture) {
            d.error(
                r,
                "region-not-prefecture",
                (
                    format!(
                        "`region` needs a prefecture question, `{}` is `{}`",
                        key.value,
                        ty.name()
                    ),
                    format!(
                        "`region` は都道府県の質問に使います。`{}` は `{}` です",
                        key.value,
                        ty.name()
                    ),
                ),
                bi!(
                    "point `answer:` at the prefecture question",
                    "`answer:` に都道府県の質問を指定してください"
                ),
            );
            return None;
        }
        return match Region::parse(&r.value) {
            Ok(reg) => mk(Test::Region(reg)),
            Err(_) => {
                d.error(
                    r,
                    "unknown-region",
                    (format!("unknown region `{}`", r.value), format!("不明な地方 `{}` です", r.value)),
                    bi!("use 北海道, 東北, 関東, 中部, 近畿, 中国, 四国 or 九州・沖縄", "北海道・東北・関東・中部・近畿・中国・四国・九州・沖縄 のいずれかを使ってください"),
                );
                None
            }
        };
    }
    None
}

/// Compiles `small_business:` / `sme:`: the law's size needs the script's
/// `industry` (a choice), `employees` and `capital` (numbers) questions, and
/// says which one is missing or of the wrong type where the condition is.
fn compile_size(size: Size, want: &Spanned<bool>, names: &Names, d: &mut Diags) -> Option<Cond> {
    // Every missing or mistyped question is named in one diagnostic, so an
    // administrator fixes them all at once.
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut node = |id: &str, number: bool| -> Option<NodeIx> {
        let found = names.index.get(id).copied();
        let ty = found.and_then(|n| names.kinds[n as usize]);
        let fits = match ty {
            Some(AnswerType::Number { .. }) => number,
            Some(AnswerType::Choice { .. }) => !number,
            _ => false,
        };
        if fits {
            return found;
        }
        let wanted = if number { "number" } else { "choice" };
        problems.push(match ty {
            Some(t) => (
                format!("`{id}` must be a `{wanted}` question but is `{}`", t.name()),
                format!(
                    "`{id}` は `{wanted}` の質問でなければなりませんが `{}` です",
                    t.name()
                ),
            ),
            None if found.is_some() => (
                format!("`{id}` must be a `{wanted}` question but is not a question"),
                format!("`{id}` は `{wanted}` の質問でなければなりませんが質問ではありません"),
            ),
            None => (
                format!("there is no `{id}` question ({wanted})"),
                format!("`{id}` の質問（{wanted}）がありません"),
            ),
        });
        None
    };
    let industry = node("industry", false);
    let employees = node("employees", true);
    let capital = node("capital", true);
    if !problems.is_empty() {
        let (en, ja): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
        d.error(
            want,
            "size-needs-question",
            (
                format!(
                    "`{}` is judged from the questions industry, employees and capital: {}",
                    size.key(),
                    en.join("; ")
                ),
                format!(
                    "`{}` は質問 industry・employees・capital から判定します：{}",
                    size.key(),
                    ja.join("。")
                ),
            ),
            bi!(
                "ask `industry` (ask: choice), `employees` and `capital` (ask: number) in the script, or compare answers with `answer:` tests instead",
                "スクリプトで `industry`（ask: choice）、`employees` と `capital`（ask: number）を尋ねるか、`answer:` の条件で比べてください"
            ),
        );
        return None;
    }
    Some(Cond::Size {
        size,
        want: want.value,
        industry: industry?,
        employees: employees?,
        capital: capital?,
    })
}

/// Checks that a value in a condition can ever equal an answer of this type
/// and returns it in the answer's key form.
fn check_value(
    ty: &AnswerType,
    v: &Spanned<RawScalar>,
    key: &str,
    d: &mut Diags,
) -> Option<String> {
    let text = v.value.as_text();
    match ty {
        AnswerType::Choice { options } | AnswerType::Multi { options, .. } => {
            if options.iter().any(|o| o.id == text) {
                Some(text)
            } else {
                let ids: Vec<&str> = options.iter().map(|o| o.id.as_str()).collect();
                // Suggest by meaning first: the value is what an owner
                // types (a label, an alias, はい/いいえ), and the condition
                // wants the option's id. Edit distance only makes sense
                // between ids, so it is tried only on a Latin value.
                let hint = match option_by_meaning(&text, options) {
                    Some(id) => (
                        format!("`{text}` is what an owner answers for option `{id}`; conditions compare option ids, so write `{id}`. Options are: {}", ids.join(", ")),
                        format!("`{text}` は選択肢 `{id}` への回答の言葉です。条件には選択肢の id を書くので `{id}` としてください。選択肢: {}", ids.join(", ")),
                    ),
                    None => {
                        let latin = text.chars().any(|c| c.is_ascii_alphanumeric());
                        let dym = super::diag::did_you_mean(
                            latin.then(|| closest(&text, ids.iter().copied())).flatten(),
                        );
                        (
                            format!("{}options are: {}", dym.0, ids.join(", ")),
                            format!("{}選択肢: {}", dym.1, ids.join(", ")),
                        )
                    }
                };
                d.error(
                    v,
                    "unknown-option",
                    (
                        format!("question `{key}` has no option `{text}`"),
                        format!("質問 `{key}` に選択肢 `{text}` はありません"),
                    ),
                    hint,
                );
                None
            }
        }
        AnswerType::YesNo | AnswerType::Consent { .. } => match text.as_str() {
            "yes" | "true" => Some("yes".into()),
            "no" | "false" => Some("no".into()),
            _ => {
                let hint = match yes_or_no(&text) {
                    Some(word) => (
                        format!("`{text}` means {word}: write `{word}` (conditions use `yes` or `no`)"),
                        format!("`{text}` は「{word}」の意味です。`{word}` と書いてください（条件には `yes` か `no` を書きます）"),
                    ),
                    None => bi!("use `yes` or `no`", "`yes` か `no` を使ってください"),
                };
                d.error(
                    v,
                    "bad-yesno",
                    (
                        format!("`{key}` is a yes/no question; `{text}` can never match"),
                        format!("`{key}` ははい／いいえの質問なので `{text}` には一致しません"),
                    ),
                    hint,
                );
                None
            }
        },
        AnswerType::Prefecture => match Prefecture::parse(&text) {
            Ok(p) => Some(p.name_ja().to_string()),
            Err(_) => {
                d.error(
                    v,
                    "unknown-prefecture",
                    (
                        format!("`{text}` is not a prefecture"),
                        format!("`{text}` は都道府県名ではありません"),
                    ),
                    bi!(
                        "write a prefecture such as 兵庫県, or use `region:`",
                        "兵庫県のように都道府県名を書くか、`region:` を使ってください"
                    ),
                );
                None
            }
        },
        AnswerType::Number { .. } => match v.value.as_number() {
            Some(n) => Some(crate::answer::fmt_number(n)),
            None => {
                d.error(
                    v,
                    "not-a-number",
                    (
                        format!("`{key}` is a number question; `{text}` is not a number"),
                        format!("`{key}` は数値の質問ですが `{text}` は数値ではありません"),
                    ),
                    bi!(
                        "write a plain number such as 20",
                        "20 のような数字を書いてください"
                    ),
                );
                None
            }
        },
        _ => Some(text),
    }
}

/// `reminders:` of the routing file: every limit parsed, every hub named
/// known; the network desk defaults to the fallback's hub.
fn compile_reminders(
    raw: &super::raw::RawReminders,
    hub_index: &HashMap<String, usize>,
    fallback: &Option<Pick>,
    hubs: &[crate::routing::Hub],
    d: &mut Diags,
) -> crate::routing::ReminderPolicy {
    use crate::domain::calendar::{BusinessHours, BusinessSpan};
    let mut policy = crate::routing::ReminderPolicy::default();
    let mut span = |v: &Option<serde_saphyr::Spanned<String>>, into: &mut BusinessSpan| {
        if let Some(v) = v {
            match BusinessSpan::parse(&v.value) {
                Ok(s) => *into = s,
                Err(e) => d.error(
                    v,
                    "bad-business-time",
                    (
                        e.to_string(),
                        format!("`{}` は営業時間での長さとして読めません", v.value),
                    ),
                    bi!(
                        "write e.g. `1 business day`, `4 business hours` or `2営業日`",
                        "`1 business day`・`4 business hours`・`2営業日` のように書いてください"
                    ),
                ),
            }
        }
    };
    span(&raw.claim_within, &mut policy.limits.claim_within);
    span(&raw.escalate_after, &mut policy.limits.escalate_after);
    span(&raw.nudge_after, &mut policy.limits.nudge_after);
    span(
        &raw.consent_reminder_after,
        &mut policy.consent_reminder_after,
    );
    span(&raw.consent_lapse_after, &mut policy.consent_lapse_after);
    let mut per_hub = Vec::new();
    for h in &raw.hubs {
        let mut l = policy.limits;
        span(&h.claim_within, &mut l.claim_within);
        span(&h.escalate_after, &mut l.escalate_after);
        span(&h.nudge_after, &mut l.nudge_after);
        per_hub.push((&h.hub, l));
    }
    let hub_known = |h: &serde_saphyr::Spanned<String>, d: &mut Diags| {
        let known = hub_index.contains_key(&h.value);
        if !known {
            d.error(
                h,
                "unknown-hub",
                (
                    format!("there is no hub `{}`", h.value),
                    format!("拠点 `{}` は定義されていません", h.value),
                ),
                bi!(
                    "name a hub defined under `hubs:`",
                    "`hubs:` で定義した拠点の id を書いてください"
                ),
            );
        }
        known
    };
    for (h, l) in per_hub {
        if hub_known(h, d) {
            policy.per_hub.insert(h.value.clone(), l);
        }
    }
    if let Some(h) = &raw.business_hours {
        match BusinessHours::parse(&h.value) {
            Ok(x) => policy.hours = x,
            Err(e) => d.error(
                h,
                "bad-business-hours",
                (
                    e.to_string(),
                    format!("`{}` は営業時間として読めません", h.value),
                ),
                bi!(
                    "write e.g. `9:00-17:00`",
                    "`9:00-17:00` のように書いてください"
                ),
            ),
        }
    }
    policy.network_desk = match &raw.network_desk {
        Some(h) => hub_known(h, d).then(|| h.value.clone()),
        None => match fallback {
            Some(Pick::Hub(i)) => hubs.get(*i).map(|h| h.id.to_string()),
            _ => None,
        },
    };
    policy
}

fn compile_routing(
    mut raw: RawRouting,
    names: &Names,
    d: &mut Diags,
    _sources: &Sources,
    with_rules: bool,
) -> Option<Routing> {
    let areas = crate::routing::areas::compile(&raw.areas, d);
    let names = &Names {
        areas: &areas,
        ..*names
    };
    if !with_rules {
        raw.rules.clear();
        raw.prefecture_answer = None;
        if let Some(f) = &mut raw.follow_up {
            f.rules.clear();
        }
    }
    let prefecture_node = match &raw.prefecture_answer {
        _ if !with_rules => None,
        Some(k) => match names.index.get(&k.value) {
            Some(&ix) if matches!(names.kinds[ix as usize], Some(AnswerType::Prefecture)) => {
                Some(ix)
            }
            _ => {
                d.error(
                    k,
                    "bad-prefecture-answer",
                    (
                        format!("`{}` is not a prefecture question in the script", k.value),
                        format!("`{}` はスクリプトの都道府県の質問ではありません", k.value),
                    ),
                    bi!(
                        "name the question with `ask: prefecture`",
                        "`ask: prefecture` の質問の id を指定してください"
                    ),
                );
                None
            }
        },
        None => names
            .index
            .get("prefecture")
            .copied()
            .filter(|ix| matches!(names.kinds[*ix as usize], Some(AnswerType::Prefecture))),
    };
    let mut hubs = Vec::new();
    let mut hub_index: HashMap<String, usize> = HashMap::new();
    for h in &raw.hubs {
        let id = match HubId::parse(&h.id.value) {
            Ok(id) => id,
            Err(e) => {
                d.error(
                    &h.id,
                    "bad-hub-id",
                    (
                        e.to_string(),
                        format!("拠点 id `{}` は使えません", h.id.value),
                    ),
                    bi!(
                        "use lowercase letters, digits and '-', e.g. hyogo-pro",
                        "英小文字・数字・'-' を使ってください（例: hyogo-pro）"
                    ),
                );
                continue;
            }
        };
        let kind = match HubKind::parse(&h.kind.value) {
            Some(k) => k,
            None => {
                let all: Vec<&str> = HubKind::ALL.iter().map(|k| k.name()).collect();
                d.error(
                    &h.kind,
                    "bad-hub-kind",
                    (
                        format!("unknown hub kind `{}`", h.kind.value),
                        format!("不明な機関種別 `{}` です", h.kind.value),
                    ),
                    (
                        format!("use one of: {}", all.join(", ")),
                        format!("次のいずれかを使ってください: {}", all.join(", ")),
                    ),
                );
                continue;
            }
        };
        let mut prefectures = Vec::new();
        for p in &h.prefectures {
            match Prefecture::parse(&p.value) {
                Ok(x) => prefectures.push(x),
                Err(e) => d.error(
                    p,
                    "unknown-prefecture",
                    (
                        e.to_string(),
                        format!("`{}` は都道府県名ではありません", p.value),
                    ),
                    bi!(
                        "write a prefecture such as 兵庫県",
                        "兵庫県のように書いてください"
                    ),
                ),
            }
        }
        let discord = h.targets.discord.as_ref().and_then(|t| {
            let channel = parse_snowflake(&t.channel, d)?;
            let staff_role = match &t.staff_role {
                Some(r) => Some(parse_snowflake(r, d)?),
                None => None,
            };
            Some(DiscordTarget {
                channel,
                staff_role,
            })
        });
        let slack = h
            .targets
            .slack
            .as_ref()
            .and_then(|t| parse_slack_target(t, d));
        if hub_index.insert(id.to_string(), hubs.len()).is_some() {
            d.error(
                &h.id,
                "duplicate-hub",
                (
                    format!("hub id `{id}` is used twice"),
                    format!("拠点 id `{id}` が重複しています"),
                ),
                bi!(
                    "give every hub its own id",
                    "拠点ごとに別の id を付けてください"
                ),
            );
        }
        let mut municipalities = Vec::new();
        for a in &h.areas {
            if let Some(codes) = crate::routing::areas::resolve(a, &areas, d) {
                municipalities.extend(codes);
            }
        }
        hubs.push(Hub {
            id,
            name: h.name.clone(),
            name_en: h.name_en.clone(),
            kind,
            prefectures,
            municipalities,
            from_directory: false,
            terminal: h.targets.terminal.clone(),
            discord,
            slack,
        });
    }
    let pick = |p: &RawHubPick, d: &mut Diags, at: Loc| -> Option<Pick> {
        match (&p.hub, &p.kind) {
            (Some(h), None) => match hub_index.get(&h.value) {
                Some(&i) => Some(Pick::Hub(i)),
                None => {
                    let dym = super::diag::did_you_mean(closest(
                        &h.value,
                        hub_index.keys().map(String::as_str),
                    ));
                    d.error(
                        h,
                        "unknown-hub",
                        (
                            format!("there is no hub `{}`", h.value),
                            format!("拠点 `{}` は定義されていません", h.value),
                        ),
                        (
                            format!("{}define it under `hubs:`", dym.0),
                            format!("{}`hubs:` で定義してください", dym.1),
                        ),
                    );
                    None
                }
            },
            (None, Some(k)) => match HubKind::parse(&k.value) {
                Some(kind) => {
                    if !hubs.iter().any(|h| h.kind == kind) {
                        d.warn(
                            k,
                            "kind-without-hub",
                            (
                                format!(
                                    "no hub of kind `{}` is defined, so this never applies",
                                    k.value
                                ),
                                format!(
                                    "種別 `{}` の拠点がないため、これは適用されません",
                                    k.value
                                ),
                            ),
                            bi!(
                                "add such a hub or pick another kind",
                                "その種別の拠点を追加するか、別の種別を指定してください"
                            ),
                        );
                    }
                    Some(Pick::Kind(kind))
                }
                None => {
                    d.error(k, "bad-hub-kind", (format!("unknown hub kind `{}`", k.value), format!("不明な機関種別 `{}` です", k.value)), bi!("use pro_talent, yorozu, chamber, bank, public_agency, consultant, npo or recruiter", "pro_talent, yorozu, chamber, bank, public_agency, consultant, npo, recruiter のいずれかを使ってください"));
                    None
                }
            },
            _ => {
                d.error(
                    at,
                    "bad-pick",
                    bi!(
                        "name either `hub:` or `kind:` (exactly one)",
                        "`hub:` か `kind:` のどちらかひとつを指定してください"
                    ),
                    bi!(
                        "e.g. `primary: { kind: pro_talent }`",
                        "例: `primary: { kind: pro_talent }`"
                    ),
                );
                None
            }
        }
    };
    let mut rules = Vec::new();
    let mut ok = true;
    let mut rule_ids = HashSet::new();
    let empty = Vec::new();
    let follow_up_rules = raw.follow_up.as_ref().map_or(&empty, |f| &f.rules);
    let mut fu_rules = Vec::new();
    for (r, follow_up) in raw
        .rules
        .iter()
        .map(|r| (r, false))
        .chain(follow_up_rules.iter().map(|r| (r, true)))
    {
        if !rule_ids.insert(r.id.value.clone()) {
            d.error(
                &r.id,
                "duplicate-rule",
                (
                    format!("rule id `{}` is used twice", r.id.value),
                    format!("ルール id `{}` が重複しています", r.id.value),
                ),
                bi!(
                    "give every rule its own id",
                    "ルールごとに別の id を付けてください"
                ),
            );
        }
        let at = Loc::from(&r.id);
        let step = support_step(&r.step, d);
        let when = compile_cond(&r.when, names, d, at);
        let primary = pick(&r.primary, d, at);
        let copies: Option<Vec<Pick>> = r
            .copies
            .iter()
            .map(|c| pick(c, d, at))
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        match (when, primary, copies) {
            (Some(w), Some(p), Some(c)) => {
                let rule = Rule {
                    id: r.id.value.clone(),
                    loc: Loc::from(&r.id),
                    description: r.description.clone(),
                    description_en: r.description_en.clone(),
                    when: Some(w),
                    step,
                    primary: p,
                    copies: c,
                };
                if follow_up {
                    fu_rules.push(Rule {
                        step: crate::routing::FOLLOW_UP_STEP,
                        ..rule
                    });
                } else {
                    rules.push(rule);
                }
            }
            _ => ok = false,
        }
    }
    let fb_at = Loc::new(1, 1);
    let fb_primary = pick(&raw.fallback.primary, d, fb_at);
    if let Some(Pick::Kind(_)) = fb_primary {
        d.error(
            raw.fallback.primary.kind.as_ref().map(Loc::from).unwrap_or(fb_at),
            "fallback-by-kind",
            bi!("the fallback must name a fixed hub with `hub:`", "fallback には `hub:` で特定の拠点を指定してください"),
            bi!("a hub chosen by kind may not exist for every prefecture; the fallback must always work", "種別指定では都道府県によって拠点がない場合があります。fallback は必ず届く拠点にしてください"),
        );
        ok = false;
    }
    let fb_copies: Option<Vec<Pick>> = raw
        .fallback
        .copies
        .iter()
        .map(|c| pick(c, d, fb_at))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    // Prefectures where the network has no hub of its own: their cases go
    // to the fallback hub, named with the national directory's hub.
    if !hubs.is_empty() {
        let uncovered: Vec<&str> = Prefecture::ALL
            .iter()
            .filter(|p| !hubs.iter().any(|h| h.prefectures.contains(p)))
            .map(|p| p.name_ja())
            .collect();
        if !uncovered.is_empty() && uncovered.len() < Prefecture::ALL.len() {
            let shown = if uncovered.len() > 6 {
                format!("{}…", uncovered[..5].join("、"))
            } else {
                uncovered.join("、")
            };
            d.warn(
                Loc::new(1, 1),
                "uncovered-prefectures",
                (format!("{} prefecture(s) have no hub in this network: their cases reach the fallback hub with the name of the responsible hub from the national directory (data/directory.tsv): {shown}", uncovered.len()), format!("{} 都道府県にはこのネットワークの窓口がありません。相談は fallback の拠点に届き、全国名簿（data/directory.tsv）の担当拠点名が添えられます: {shown}", uncovered.len())),
                bi!("add hubs with targets for them when the network grows", "ネットワークが広がったら窓口のある拠点を追加してください"),
            );
        }
    }
    let follow_up = raw
        .follow_up
        .as_ref()
        .and_then(|f| compile_follow_up(f, std::mem::take(&mut fu_rules), d));
    let reminders = compile_reminders(&raw.reminders, &hub_index, &fb_primary, &hubs, d);
    let fb_step = support_step(&raw.fallback.step, d);
    if !ok || d.has_errors() {
        return None;
    }
    crate::routing::areas::add_directory(&mut hubs);
    Some(Routing {
        reminders,
        network: raw.network,
        prefecture_node,
        hubs,
        rules,
        fallback: Rule {
            id: "fallback".into(),
            loc: Loc::new(1, 1),
            description: raw.fallback.description,
            description_en: raw.fallback.description_en,
            when: None,
            step: fb_step,
            primary: fb_primary?,
            copies: fb_copies?,
        },
        follow_up,
    })
}

/// The support step a rule hands a case over at (1 when not given): one of
/// the five support steps or step 0 (discovery), as `domain.md` numbers
/// them. Anything else is an error at its place; clamping it would route
/// cases as matched (step 5) that no one matched.
fn support_step(v: &Option<serde_saphyr::Spanned<i64>>, d: &mut Diags) -> u8 {
    let Some(v) = v else { return 1 };
    match u8::try_from(v.value) {
        Ok(s) if s <= crate::routing::FOLLOW_UP_STEP => s,
        _ => {
            d.error(
                v,
                "bad-step",
                (
                    format!(
                        "step `{}` is not a support step: it must be 0 to 5 (0 discovery, 1 management issues, 2 solution, 3 talent need, 4 recruiting, 5 follow-up)",
                        v.value
                    ),
                    format!(
                        "step `{}` は支援の段階ではありません。0〜5 で書いてください（0 顧客発掘、1 経営課題の明確化、2 解決策の提案、3 人材要件定義、4 人材紹介、5 定着支援）",
                        v.value
                    ),
                ),
                bi!(
                    "write the step the case has reached when it is handed over, e.g. `step: 3`",
                    "引き継ぐ時点で案件が達している段階を `step: 3` のように書いてください"
                ),
            );
            1
        }
    }
}

/// The `follow_up:` section: intervals ascending and within five years, a
/// reminder before the follow-up is recorded as unanswered.
fn compile_follow_up(
    raw: &super::raw::RawFollowUp,
    rules: Vec<Rule>,
    d: &mut Diags,
) -> Option<crate::routing::FollowUpPolicy> {
    let months = &raw.after_months.value;
    let ascending = months.windows(2).all(|w| w[0] < w[1]);
    if months.is_empty() || !ascending || months.iter().any(|m| *m == 0 || *m > 60) {
        d.error(
            &raw.after_months,
            "bad-follow-up-months",
            bi!(
                "`after_months` must list months after the match, ascending, each from 1 to 60",
                "`after_months` にはマッチング後の月数を 1〜60 の範囲で小さい順に書いてください"
            ),
            bi!("e.g. `after_months: [1, 6]`", "例: `after_months: [1, 6]`"),
        );
        return None;
    }
    let remind = raw.remind_after_days.as_ref().map_or(7, |s| s.value);
    let give_up = raw.unanswered_after_days.as_ref().map_or(14, |s| s.value);
    if remind == 0 || give_up <= remind {
        let at = raw
            .unanswered_after_days
            .as_ref()
            .map(Loc::from)
            .or(raw.remind_after_days.as_ref().map(Loc::from))
            .unwrap_or(Loc::from(&raw.after_months));
        d.error(
            at,
            "bad-follow-up-days",
            bi!(
                "`remind_after_days` must be at least 1 and less than `unanswered_after_days`",
                "`remind_after_days` は 1 以上で、`unanswered_after_days` より小さくしてください"
            ),
            bi!(
                "e.g. `remind_after_days: 7` and `unanswered_after_days: 14`",
                "例: `remind_after_days: 7`、`unanswered_after_days: 14`"
            ),
        );
        return None;
    }
    Some(crate::routing::FollowUpPolicy {
        after_months: months.clone(),
        remind_after_days: remind,
        unanswered_after_days: give_up,
        rules,
    })
}

/// `targets.slack` of a hub: the channel id and the staff (a user group id
/// or a list of member ids), each checked for Slack's id form.
fn parse_slack_target(t: &RawSlackTarget, d: &mut Diags) -> Option<SlackTarget> {
    use crate::routing::{SlackId, SlackStaff};
    let mut id = |s: &Spanned<String>, kinds: &[char], what: &str, what_ja: &str| {
        let r = SlackId::parse(&s.value, kinds);
        if r.is_none() {
            d.error(
                s,
                "bad-slack-id",
                (
                    format!("`{}` is not a Slack {what} id", s.value),
                    format!("`{}` は Slack の{what_ja} id ではありません", s.value),
                ),
                bi!(
                    "copy the id from Slack (channel: channel details → bottom; user group: its URL; member: profile → ⋮ → Copy member ID), e.g. C0123ABCD",
                    "Slack から id をコピーしてください（チャンネル：チャンネル詳細の最下部、ユーザーグループ：その URL、メンバー：プロフィール → ⋮ →「メンバーIDをコピー」）。例: C0123ABCD"
                ),
            );
        }
        r
    };
    let channel = id(&t.channel, &['C', 'G'], "channel", "チャンネル");
    let staff = match &t.staff {
        RawSlackStaff::Group(g) => {
            SlackStaff::Group(id(g, &['S'], "user group", "ユーザーグループ")?)
        }
        RawSlackStaff::Members(ms) => {
            let ids: Vec<Option<SlackId>> = ms
                .iter()
                .map(|m| id(m, &['U', 'W'], "member", "メンバー"))
                .collect();
            SlackStaff::Members(ids.into_iter().collect::<Option<Vec<_>>>()?)
        }
    };
    Some(SlackTarget {
        channel: channel?,
        staff,
    })
}

fn parse_snowflake(s: &Spanned<String>, d: &mut Diags) -> Option<u64> {
    match s.value.trim().parse::<u64>() {
        Ok(v) if v > 0 => Some(v),
        _ => {
            d.error(
                s,
                "bad-snowflake",
                (format!("`{}` is not a Discord id", s.value), format!("`{}` は Discord の id ではありません", s.value)),
                bi!(
                    "copy the id with Discord's developer mode (right click → Copy ID) and write it in quotes",
                    "Discord の開発者モードで id をコピー（右クリック →「IDをコピー」）し、引用符で囲んで書いてください"
                ),
            );
            None
        }
    }
}
