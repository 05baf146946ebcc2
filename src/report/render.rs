//! The report as Markdown, CSV or one self-contained HTML page (inline CSS
//! and SVG charts: no script, font or image is fetched from anywhere).
//! Pure functions of a [`Report`].
//!
//! Labels are Japanese first with the English after a slash
//! ([`Lang::Ja`]), or English only ([`Lang::En`]). Numbers are printed
//! without grouping separators so that every format shows the same digits.

use super::{Report, Spread, Stage};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

fn l(lang: Lang, ja: &str, en: &str) -> String {
    match lang {
        Lang::Ja => format!("{ja} / {en}"),
        Lang::En => en.to_string(),
    }
}

fn hours(h: Option<f64>) -> String {
    match h {
        Some(h) => format!("{h:.1}"),
        None => "-".into(),
    }
}

fn hub_name(r: &Report, id: &str, lang: Lang) -> String {
    if lang == Lang::En {
        if let Some(n) = r.hub_names_en.get(id) {
            return n.clone();
        }
    }
    r.hub_names
        .get(id)
        .cloned()
        .unwrap_or_else(|| id.to_string())
}

/// The name of a KPI row's hub (or the network) in the report's language.
fn kpi_name(r: &Report, k: &super::KpiRow, lang: Lang) -> String {
    match &k.hub {
        Some(h) => hub_name(r, h, lang),
        None => l(lang, "ネットワーク全体", "network"),
    }
}

/// The footnotes: how each figure is defined from stored facts.
pub fn footnotes(lang: Lang) -> Vec<String> {
    let notes: Vec<(String, String)> = vec![
        ("期間は --from から --to まで（両日を含む、日本時間）。相談と案件は作成日時、担当者の操作（受付・転送・ステップ変更）は期間末より前のものを数えます。".into(),
         "The period runs from --from to --to inclusive, in Japan time. Sessions and cases count by when they were created; staff actions (claim, forward, step change) count when they happened before the period's end.".into()),
        ("案件は期間末に担当していた機関（転送後はその転送先）に数えます。--hub 指定時は、その機関を一度でも経由した案件だけを読みます。".into(),
         "A case counts for the hub holding it at the period's end (after forwards, the last hub). With --hub only cases that were at that hub at some time are read.".into()),
        ("参画機関数: routing.yaml の支援機関の数（全国名簿から補った名前は除く）。".into(),
         "Institutions: the hubs in routing.yaml (names taken from the national directory left out).".into()),
        ("支援企業数: 案件が届けられた経営者の数（同じ経営者の複数の案件は1社）。".into(),
         "Companies supported: owners with at least one case (one owner counts once).".into()),
        ("求人化（STEP3/4）: 案件のステップが3以上（取次時のステップ、または担当者が進めたステップ）の企業数。".into(),
         "Concrete job opening (step 3/4): companies with a case at step 3 or later (the step it was handed over at, or a step staff moved it to).".into()),
        ("マッチング・フォロー（STEP4/5）: ステップが4以上の企業数。".into(),
         "Matched and followed up (step 4/5): companies with a case at step 4 or later.".into()),
        ("円滑に引き継いだ担当者: 機関に届いてから受付期限（routing.yaml の reminders の claim_within、機関ごと、土日・祝日を除く営業時間で数えます）までに案件を受け付け、その後自分で転送またはステップを進めた担当者の数（担当者の名前は出しません）。".into(),
         "Staff who handed cases on smoothly: staff who claimed a case within their hub's claim limit of its arrival there (claim_within under reminders in routing.yaml, per hub, counted in business hours without weekends and national holidays) and afterwards forwarded it or moved it to a later step themselves (no names are shown).".into()),
        ("相談の流れ: first_contact の相談を、取り扱いの確認に「はい」、資本金（会社概要の最後）、これまでの取組（経営課題の最後）、人材で解決するか（人材ニーズ）への回答、共有への同意、いずれかの機関への配信完了で数えます。".into(),
         "Funnel: first_contact sessions, by an answer other than no to the privacy question, an answer to capital (the end of the profile), to what was tried (the end of the issues), to whether people are the answer (talent need), a granted consent, and a delivery completed to any hub.".into()),
        ("離脱: 完了していない相談が今いる質問。聞き直し: 回答が読み取れず同じ質問をもう一度した回数（期間内）。".into(),
         "Stopped: where sessions that did not complete are now. Re-asks: how often a question was asked again because the answer was not understood (in the period).".into()),
        ("受付までの時間: 案件が機関に届いてから最初の受付まで。転送までの時間: 機関に届いてから転送まで。中央値と90パーセンタイル（最近順位法、時間）。期限超過: 今、未受付のまま機関の受付期限（督促が届く時刻）を過ぎた案件。".to_string(),
         "Time to claim: from a case's arrival at a hub to its first claim there. Time to forward: from arrival at a hub to the forward. Median and 90th percentile (nearest rank), in hours. Overdue now: cases open and unclaimed past their hub's claim limit now (when their reminder comes due).".to_string()),
        ("フォローアップ回答: 監査記録のフォローアップ回答の数。記録がなければ 0 です。".into(),
         "Follow-ups answered: follow-up answers in the audit log; 0 when none are recorded.".into()),
        ("この報告は集計値だけを含み、経営者の回答・氏名・連絡先は含みません。".into(),
         "This report holds aggregates only: no owner's answers, names or contact details.".into()),
    ];
    notes
        .into_iter()
        .map(|(ja, en)| match lang {
            Lang::Ja => format!("{ja} / {en}"),
            Lang::En => en,
        })
        .collect()
}

fn title(r: &Report, lang: Lang) -> String {
    let hub = match &r.params.hub {
        Some(h) => format!(" — {}", hub_name(r, h, lang)),
        None => String::new(),
    };
    format!(
        "{}{hub} ({} – {})",
        l(lang, "ネットワークのKPI報告", "Network KPI report"),
        r.params.from,
        r.params.to
    )
}

fn stage_label(s: Stage, lang: Lang) -> String {
    let (ja, en) = s.label();
    l(lang, ja, en)
}

fn md_row(cells: &[String]) -> String {
    let esc: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    format!("| {} |\n", esc.join(" | "))
}

fn md_table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    out.push_str(&md_row(head));
    out.push_str(&md_row(&vec!["---".to_string(); head.len()]));
    for r in rows {
        out.push_str(&md_row(r));
    }
    out.push('\n');
}

struct Tables {
    kpi: (Vec<String>, Vec<Vec<String>>),
    funnel: Option<(Vec<String>, Vec<Vec<String>>)>,
    questions: Option<(Vec<String>, Vec<Vec<String>>)>,
    routes: (Vec<String>, Vec<Vec<String>>),
    forwards: (Vec<String>, Vec<Vec<String>>),
    times: (Vec<String>, Vec<Vec<String>>),
    steps: (Vec<String>, Vec<Vec<String>>),
}

fn spread_row(label: String, s: &Spread) -> Vec<String> {
    vec![label, s.n.to_string(), hours(s.median_h), hours(s.p90_h)]
}

fn tables(r: &Report, lang: Lang) -> Tables {
    let kpi = (
        vec![
            l(lang, "支援機関", "hub"),
            l(lang, "参画機関数", "institutions"),
            l(lang, "支援企業数", "companies supported"),
            l(lang, "求人化（STEP3/4）", "job opening (step 3/4)"),
            l(
                lang,
                "マッチング・フォロー（STEP4/5）",
                "matched and followed up (step 4/5)",
            ),
            l(
                lang,
                "円滑に引き継いだ担当者",
                "staff who handed on smoothly",
            ),
        ],
        r.kpi
            .iter()
            .map(|k| {
                vec![
                    kpi_name(r, k, lang),
                    k.institutions.to_string(),
                    k.companies.to_string(),
                    k.job_opening.to_string(),
                    k.matched.to_string(),
                    k.smooth_staff.to_string(),
                ]
            })
            .collect(),
    );
    let funnel = r.funnel.as_ref().map(|f| {
        let first = f.first().map_or(0, |x| x.1);
        (
            vec![
                l(lang, "段階", "stage"),
                l(lang, "相談数", "sessions"),
                l(lang, "開始比（%）", "of started (%)"),
            ],
            f.iter()
                .map(|(s, n)| {
                    vec![
                        stage_label(*s, lang),
                        n.to_string(),
                        if first == 0 {
                            "-".into()
                        } else {
                            format!("{:.1}", *n as f64 * 100.0 / first as f64)
                        },
                    ]
                })
                .collect(),
        )
    });
    let questions = r.questions.as_ref().map(|q| {
        (
            vec![
                l(lang, "質問", "question"),
                "id".to_string(),
                l(lang, "回答した相談", "answered"),
                l(lang, "ここで離脱", "stopped here"),
                l(lang, "聞き直し", "re-asks"),
            ],
            q.iter()
                .map(|q| {
                    vec![
                        q.label.clone(),
                        q.node.clone(),
                        q.answered.to_string(),
                        q.stopped.to_string(),
                        q.reasks.to_string(),
                    ]
                })
                .collect(),
        )
    });
    let routes = (
        vec![
            l(lang, "ルール", "rule"),
            l(lang, "取次先", "routed to"),
            l(lang, "案件数", "cases"),
        ],
        r.routes
            .iter()
            .map(|(rule, hub, n)| vec![rule.clone(), hub_name(r, hub, lang), n.to_string()])
            .collect(),
    );
    let forwards = (
        vec![
            l(lang, "転送元", "from"),
            l(lang, "転送先", "to"),
            l(lang, "転送数", "forwards"),
        ],
        r.forwards
            .iter()
            .map(|(f, t, n)| vec![hub_name(r, f, lang), hub_name(r, t, lang), n.to_string()])
            .collect(),
    );
    let times = (
        vec![
            l(lang, "指標", "measure"),
            l(lang, "件数", "count"),
            l(lang, "中央値（時間）", "median (h)"),
            l(lang, "90パーセンタイル（時間）", "p90 (h)"),
        ],
        vec![
            spread_row(l(lang, "受付までの時間", "time to claim"), &r.time_to_claim),
            spread_row(
                l(lang, "転送までの時間", "time to forward"),
                &r.time_to_forward,
            ),
        ],
    );
    let steps = (
        vec![l(lang, "指標", "measure"), l(lang, "件数", "count")],
        vec![
            vec![
                l(lang, "STEP3 到達", "reached step 3"),
                r.steps[0].to_string(),
            ],
            vec![
                l(lang, "STEP4 到達", "reached step 4"),
                r.steps[1].to_string(),
            ],
            vec![
                l(lang, "STEP5 到達", "reached step 5"),
                r.steps[2].to_string(),
            ],
            vec![
                l(lang, "フォローアップ回答", "follow-ups answered"),
                r.followups_answered.to_string(),
            ],
            vec![
                l(lang, "期限超過（現在）", "overdue now"),
                r.overdue_now.to_string(),
            ],
        ],
    );
    Tables {
        kpi,
        funnel,
        questions,
        routes,
        forwards,
        times,
        steps,
    }
}

fn followup_note(r: &Report, lang: Lang) -> Option<String> {
    (!r.followups_recorded).then(|| {
        l(
            lang,
            "フォローアップの記録はまだありません（0 と表示）",
            "no follow-ups are recorded yet (shown as 0)",
        )
    })
}

fn hub_note(lang: Lang) -> String {
    l(
        lang,
        "機関を指定した報告には、相談の流れと質問ごとの離脱は含みません（機関が決まる前の相談のため）",
        "a report for one hub leaves out the funnel and the per-question figures (they concern owners before a hub is chosen)",
    )
}

pub fn markdown(r: &Report, lang: Lang) -> String {
    let t = tables(r, lang);
    let mut out = format!("# {}\n\n", title(r, lang));
    let _ = writeln!(
        out,
        "{}: {}\n",
        l(lang, "作成", "generated"),
        r.params.now.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(out, "## {}\n", l(lang, "KPI（ガイドのKPI表）", "KPI table"));
    md_table(&mut out, &t.kpi.0, &t.kpi.1);
    match (&t.funnel, &t.questions) {
        (Some(f), Some(q)) => {
            let _ = writeln!(out, "## {}\n", l(lang, "相談の流れ", "Consultation funnel"));
            md_table(&mut out, &f.0, &f.1);
            let _ = writeln!(
                out,
                "## {}\n",
                l(
                    lang,
                    "質問ごとの離脱と聞き直し",
                    "Drop-off and re-asks per question"
                )
            );
            md_table(&mut out, &q.0, &q.1);
        }
        _ => {
            let _ = writeln!(out, "> {}\n", hub_note(lang));
        }
    }
    let _ = writeln!(out, "## {}\n", l(lang, "案件取次", "Hand-offs"));
    md_table(&mut out, &t.routes.0, &t.routes.1);
    md_table(&mut out, &t.forwards.0, &t.forwards.1);
    md_table(&mut out, &t.times.0, &t.times.1);
    let _ = writeln!(
        out,
        "## {}\n",
        l(lang, "ステップの進み具合", "Step progress")
    );
    md_table(&mut out, &t.steps.0, &t.steps.1);
    if let Some(n) = followup_note(r, lang) {
        let _ = writeln!(out, "> {n}\n");
    }
    let _ = writeln!(out, "## {}\n", l(lang, "注記", "Notes"));
    for (i, n) in footnotes(lang).iter().enumerate() {
        let _ = writeln!(out, "{}. {n}", i + 1);
    }
    out
}

/// CSV: one figure per line, `section,key,label,column,value`, so that a
/// spreadsheet or a script can pick any figure by its keys. The `key`
/// column holds ids (hub id, stage, node id), never names.
pub fn csv(r: &Report, lang: Lang) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut put = |section: &str, key: &str, label: &str, column: &str, value: String| {
        w.write_record([section, key, label, column, value.as_str()])
            .expect("writing CSV to memory does not fail");
    };
    put("section", "key", "label", "column", "value".into());
    put("period", "", "", "from", r.params.from.to_string());
    put("period", "", "", "to", r.params.to.to_string());
    put(
        "period",
        "",
        "",
        "hub",
        r.params.hub.clone().unwrap_or_default(),
    );
    for k in &r.kpi {
        let key = k.hub.clone().unwrap_or_else(|| "network".into());
        for (col, v) in [
            ("institutions", k.institutions),
            ("companies", k.companies),
            ("job_opening", k.job_opening),
            ("matched", k.matched),
            ("smooth_staff", k.smooth_staff),
        ] {
            put("kpi", &key, &kpi_name(r, k, lang), col, v.to_string());
        }
    }
    if let Some(f) = &r.funnel {
        for (s, n) in f {
            put(
                "funnel",
                s.key(),
                &stage_label(*s, lang),
                "sessions",
                n.to_string(),
            );
        }
    }
    if let Some(q) = &r.questions {
        for q in q {
            for (col, v) in [
                ("answered", q.answered),
                ("stopped", q.stopped),
                ("reasks", q.reasks),
            ] {
                put("question", &q.node, &q.label, col, v.to_string());
            }
        }
    }
    for (rule, hub, n) in &r.routes {
        put(
            "route",
            &format!("{rule}>{hub}"),
            &hub_name(r, hub, lang),
            "cases",
            n.to_string(),
        );
    }
    for (f, t, n) in &r.forwards {
        put(
            "forward",
            &format!("{f}>{t}"),
            "",
            "forwards",
            n.to_string(),
        );
    }
    for (key, s) in [("claim", &r.time_to_claim), ("forward", &r.time_to_forward)] {
        put("time", key, "", "n", s.n.to_string());
        put("time", key, "", "median_h", hours(s.median_h));
        put("time", key, "", "p90_h", hours(s.p90_h));
    }
    put("overdue", "now", "", "cases", r.overdue_now.to_string());
    for (i, s) in ["3", "4", "5"].iter().enumerate() {
        put("step", s, "", "cases", r.steps[i].to_string());
    }
    put(
        "followup",
        "answered",
        "",
        "count",
        r.followups_answered.to_string(),
    );
    String::from_utf8(w.into_inner().expect("flushing to memory does not fail"))
        .expect("CSV of UTF-8 fields is UTF-8")
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    out.push_str("<div class=\"scroll\"><table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", html_escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i > 0
                && c.chars()
                    .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == '-')
            {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", html_escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>\n");
}

/// A horizontal bar chart as inline SVG: one bar per `(label, value)`.
/// It scales with the page (viewBox, width 100%), so it fits a phone.
pub fn bar_chart(id: &str, title: &str, bars: &[(String, u64)]) -> String {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let row = 28;
    let label_w = 240;
    let bar_w = 300;
    let h = row * bars.len().max(1) + 8;
    let mut s = format!(
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-label=\"{t}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = html_escape(title),
        w = label_w + bar_w + 60,
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = i * row + 4;
        let w = (*v as f64 / max as f64 * bar_w as f64).round() as usize;
        let _ = write!(
            s,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" class=\"lbl\">{label}</text><rect class=\"bar\" x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{bh}\" data-value=\"{v}\"/><text x=\"{vx}\" y=\"{ty}\" class=\"val\">{v}</text>",
            lx = label_w - 6,
            ty = y + 15,
            bh = row - 8,
            vx = label_w + w + 6,
            label = html_escape(label),
        );
    }
    s.push_str("</svg>\n");
    s
}

const CSS: &str = "
:root{color-scheme:light;--bar:#2b6cb0;--fg:#1a202c;--mut:#4a5568;--line:#e2e8f0}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font-family:system-ui,-apple-system,'Hiragino Sans','Noto Sans CJK JP','Yu Gothic',sans-serif;color:var(--fg);background:#fff;line-height:1.5}
main{max-width:60rem;margin:0 auto}
h1{font-size:1.4rem;margin:.2rem 0 1rem}
h2{font-size:1.15rem;margin:1.6rem 0 .6rem;border-bottom:2px solid var(--line);padding-bottom:.2rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;font-size:.92rem}
th,td{border:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f7fafc}
td.n{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{display:block;max-width:100%;height:auto;margin:.4rem 0 1rem}
svg .bar{fill:var(--bar)}
svg .lbl,svg .val{font-size:12px;fill:var(--fg)}
.note{color:var(--mut);font-size:.9rem}
ol.notes{color:var(--mut);font-size:.85rem;padding-left:1.2rem}
@media (max-width:40rem){body{padding:.6rem}h1{font-size:1.2rem}table{font-size:.85rem}}
";

pub fn html(r: &Report, lang: Lang) -> String {
    let t = tables(r, lang);
    let html_lang = match lang {
        Lang::Ja => "ja",
        Lang::En => "en",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{html_lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>{t}</title><style>{CSS}</style></head><body><main>\n<h1>{t}</h1>\n<p class=\"note\">{g}: {now}</p>\n",
        t = html_escape(&title(r, lang)),
        g = html_escape(&l(lang, "作成", "generated")),
        now = r.params.now.format("%Y-%m-%d %H:%M UTC"),
    );
    let _ = writeln!(
        out,
        "<h2>{}</h2>",
        html_escape(&l(lang, "KPI（ガイドのKPI表）", "KPI table"))
    );
    html_table(&mut out, &t.kpi.0, &t.kpi.1);
    let kpi_bars: Vec<(String, u64)> = r
        .kpi
        .iter()
        .filter(|k| k.hub.is_some())
        .map(|k| (kpi_name(r, k, lang), k.companies))
        .collect();
    out.push_str(&bar_chart(
        "chart-kpi",
        &l(lang, "支援企業数（機関別）", "companies supported per hub"),
        &kpi_bars,
    ));
    match (&t.funnel, &t.questions, &r.funnel, &r.questions) {
        (Some(f), Some(q), Some(rf), Some(rq)) => {
            let _ = writeln!(
                out,
                "<h2>{}</h2>",
                html_escape(&l(lang, "相談の流れ", "Consultation funnel"))
            );
            let bars: Vec<(String, u64)> = rf
                .iter()
                .map(|(s, n)| (stage_label(*s, lang), *n))
                .collect();
            out.push_str(&bar_chart(
                "chart-funnel",
                &l(lang, "相談の流れ", "consultation funnel"),
                &bars,
            ));
            html_table(&mut out, &f.0, &f.1);
            let _ = writeln!(
                out,
                "<h2>{}</h2>",
                html_escape(&l(
                    lang,
                    "質問ごとの離脱と聞き直し",
                    "Drop-off and re-asks per question"
                ))
            );
            let bars: Vec<(String, u64)> = rq.iter().map(|q| (q.label.clone(), q.reasks)).collect();
            out.push_str(&bar_chart(
                "chart-reasks",
                &l(lang, "聞き直し（質問別）", "re-asks per question"),
                &bars,
            ));
            html_table(&mut out, &q.0, &q.1);
        }
        _ => {
            let _ = writeln!(
                out,
                "<p class=\"note\">{}</p>",
                html_escape(&hub_note(lang))
            );
        }
    }
    let _ = writeln!(
        out,
        "<h2>{}</h2>",
        html_escape(&l(lang, "案件取次", "Hand-offs"))
    );
    html_table(&mut out, &t.routes.0, &t.routes.1);
    html_table(&mut out, &t.forwards.0, &t.forwards.1);
    html_table(&mut out, &t.times.0, &t.times.1);
    let _ = writeln!(
        out,
        "<h2>{}</h2>",
        html_escape(&l(lang, "ステップの進み具合", "Step progress"))
    );
    let bars = vec![
        ("STEP3".to_string(), r.steps[0]),
        ("STEP4".to_string(), r.steps[1]),
        ("STEP5".to_string(), r.steps[2]),
    ];
    out.push_str(&bar_chart(
        "chart-steps",
        &l(lang, "ステップ到達（案件数）", "cases reaching each step"),
        &bars,
    ));
    html_table(&mut out, &t.steps.0, &t.steps.1);
    if let Some(n) = followup_note(r, lang) {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", html_escape(&n));
    }
    let _ = writeln!(
        out,
        "<h2>{}</h2>\n<ol class=\"notes\">",
        html_escape(&l(lang, "注記", "Notes"))
    );
    for n in footnotes(lang) {
        let _ = write!(out, "<li>{}</li>", html_escape(&n));
    }
    out.push_str("</ol>\n</main></body></html>\n");
    out
}

/// The monthly summary for the administrators' channel: a few lines of
/// network figures (aggregates only).
pub fn summary(r: &Report, lang: Lang) -> String {
    let net = r.kpi.iter().find(|k| k.hub.is_none()).or(r.kpi.last());
    let mut out = format!("{}\n", title(r, lang));
    if let Some(k) = net {
        let _ = writeln!(
            out,
            "{}: {} / {}: {} / {}: {} / {}: {}",
            l(lang, "支援企業", "companies"),
            k.companies,
            l(lang, "求人化", "job opening"),
            k.job_opening,
            l(lang, "マッチング", "matched"),
            k.matched,
            l(lang, "円滑な引継ぎ担当者", "smooth staff"),
            k.smooth_staff
        );
    }
    if let Some(f) = &r.funnel {
        let parts: Vec<String> = f
            .iter()
            .map(|(s, n)| format!("{} {n}", stage_label(*s, lang)))
            .collect();
        let _ = writeln!(out, "{}", parts.join(" → "));
    }
    if let Some(q) = r
        .questions
        .as_ref()
        .and_then(|q| q.iter().max_by_key(|q| q.reasks))
    {
        if q.reasks > 0 {
            let _ = writeln!(
                out,
                "{}: {} ({})",
                l(lang, "聞き直しが最も多い質問", "most re-asked question"),
                q.label,
                q.reasks
            );
        }
    }
    let _ = writeln!(
        out,
        "{}: {} / {}: {} h",
        l(lang, "期限超過", "overdue now"),
        r.overdue_now,
        l(lang, "受付までの中央値", "median time to claim"),
        hours(r.time_to_claim.median_h)
    );
    out
}
