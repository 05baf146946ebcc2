//! Areas below the prefecture, and the national directory of hubs.
//!
//! Networks are often sub-prefectural (the guide's 京都府北部5市2町, or
//! 七尾・能登), so a routing file names areas as lists of municipalities and
//! hubs and rules refer to them. Every municipality name is checked against
//! the official list (`data/municipalities.tsv`) when the file is compiled.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_saphyr::Spanned;

use super::{Hub, HubKind};
use crate::bi;
use crate::domain::ids::HubId;
use crate::domain::municipality::{Municipality, Place, PlaceError};
use crate::domain::prefecture::Prefecture;
use crate::script::diag::{closest, Diags};
use crate::script::raw::RawArea;

const DIRECTORY_TSV: &str = include_str!("../../data/directory.tsv");

/// One hub of the national directory: a name, no chat target.
#[derive(Debug, Clone)]
pub struct DirectoryEntry {
    pub prefecture: Prefecture,
    pub kind: HubKind,
    pub name: &'static str,
    pub name_en: &'static str,
}

/// The national directory, as shipped in `data/directory.tsv`.
pub fn directory() -> &'static [DirectoryEntry] {
    static DIR: LazyLock<Vec<DirectoryEntry>> = LazyLock::new(|| {
        DIRECTORY_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&'static str> = l.split('\t').collect();
                DirectoryEntry {
                    prefecture: Prefecture::ALL
                        .into_iter()
                        .find(|p| p.name_ja() == f[0])
                        .expect("data/directory.tsv: a prefecture"),
                    kind: HubKind::parse(f[1]).expect("data/directory.tsv: a hub kind"),
                    name: f[2],
                    name_en: f[3],
                }
            })
            .collect()
    });
    &DIR
}

/// Adds the directory's hubs for every prefecture and kind the network has
/// no hub of its own for: the network's file extends and overrides the
/// directory.
pub fn add_directory(hubs: &mut Vec<Hub>) {
    for e in directory() {
        let covered = hubs
            .iter()
            .any(|h| h.kind == e.kind && h.prefectures.contains(&e.prefecture));
        if covered {
            continue;
        }
        let id = format!(
            "directory-{}-{:02}",
            e.kind.name().replace('_', "-"),
            e.prefecture.code()
        );
        hubs.push(Hub {
            id: HubId::parse(&id).expect("directory hub ids are lowercase ascii"),
            name: e.name.to_string(),
            name_en: Some(e.name_en.to_string()),
            kind: e.kind,
            prefectures: vec![e.prefecture],
            municipalities: Vec::new(),
            from_directory: true,
            terminal: None,
            discord: None,
            slack: None,
        });
    }
}

/// Compiles the `areas:` of a routing file: every municipality must be one
/// in the official list, named unambiguously.
pub fn compile(raw: &[RawArea], d: &mut Diags) -> HashMap<String, Vec<u32>> {
    let mut out = HashMap::new();
    for a in raw {
        let mut codes = Vec::new();
        for m in &a.municipalities {
            if let Some(c) = municipality_codes(m, &[], d) {
                codes.extend(c);
            }
        }
        if out.insert(a.name.value.clone(), codes).is_some() {
            d.error(
                &a.name,
                "duplicate-area",
                (
                    format!("area `{}` is defined twice", a.name.value),
                    format!("地域 `{}` が二度定義されています", a.name.value),
                ),
                bi!(
                    "give every area its own name",
                    "地域ごとに別の名前を付けてください"
                ),
            );
        }
    }
    out
}

/// An area name of the file, or else a single municipality.
pub fn resolve(
    name: &Spanned<String>,
    areas: &HashMap<String, Vec<u32>>,
    d: &mut Diags,
) -> Option<Vec<u32>> {
    if let Some(codes) = areas.get(&name.value) {
        return Some(codes.clone());
    }
    let area_names: Vec<&str> = areas.keys().map(String::as_str).collect();
    municipality_codes(name, &area_names, d)
}

/// The codes of a municipality; a designated city (京都市) brings its wards,
/// because owners may name either.
fn municipality_codes(
    name: &Spanned<String>,
    area_names: &[&str],
    d: &mut Diags,
) -> Option<Vec<u32>> {
    match Place::parse(&name.value) {
        Ok(p) if p.municipality().is_some() => {
            let m = p.municipality()?;
            let mut codes = vec![m.code()];
            codes.extend(
                Municipality::all()
                    .filter(|w| {
                        w.prefecture() == m.prefecture()
                            && w.name() != m.name()
                            && w.name().starts_with(m.name())
                            && w.name().ends_with('区')
                    })
                    .map(Municipality::code),
            );
            Some(codes)
        }
        Err(PlaceError::Ambiguous { candidates, .. }) => {
            let names: Vec<String> = candidates.iter().map(|m| m.qualified_name()).collect();
            d.error(
                name,
                "ambiguous-municipality",
                (
                    format!(
                        "`{}` names more than one municipality: {}",
                        name.value,
                        names.join(", ")
                    ),
                    format!(
                        "`{}` は複数の市区町村に当たります: {}",
                        name.value,
                        names.join("、")
                    ),
                ),
                (
                    format!("write it with its prefecture, e.g. {}", names[0]),
                    format!("{} のように都道府県名から書いてください", names[0]),
                ),
            );
            None
        }
        _ => {
            // An area of the file first: a typo in an area name is likelier
            // than a municipality nobody defined.
            let suggestion = closest(&name.value, area_names.iter().copied())
                .or_else(|| closest(&name.value, Municipality::all().map(Municipality::name)));
            let (hint_en, hint_ja) = match suggestion {
                Some(s) => (
                    format!("did you mean `{s}`? Name an area defined under `areas:` or a municipality from the official list (data/municipalities.tsv)"),
                    format!("`{s}` のことですか？`areas:` で定義した地域名か、市区町村の正式名（data/municipalities.tsv）を書いてください"),
                ),
                None => (
                    "name a municipality from the official list (data/municipalities.tsv), e.g. 綾部市, or an area defined under `areas:`".to_string(),
                    "市区町村の正式名（data/municipalities.tsv、例: 綾部市）か、`areas:` で定義した地域名を書いてください".to_string(),
                ),
            };
            d.error(
                name,
                "unknown-municipality",
                (
                    format!(
                        "`{}` is not a municipality or an area of this file",
                        name.value
                    ),
                    format!(
                        "`{}` は市区町村でも、このファイルの地域でもありません",
                        name.value
                    ),
                ),
                (hint_en, hint_ja),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_names_every_prefectures_hubs() {
        let d = directory();
        let yorozu = d.iter().filter(|e| e.kind == HubKind::Yorozu).count();
        let pro: Vec<&DirectoryEntry> = d.iter().filter(|e| e.kind == HubKind::ProTalent).collect();
        assert_eq!(yorozu, 47);
        assert_eq!(pro.len(), 45);
        for p in ["東京都", "沖縄県"] {
            assert!(pro.iter().all(|e| e.prefecture.name_ja() != p), "{p}");
        }
        for e in d {
            let suffix = match e.kind {
                HubKind::Yorozu => "よろず支援拠点",
                _ => "プロフェッショナル人材戦略拠点",
            };
            assert_eq!(e.name, format!("{}{suffix}", e.prefecture.name_ja()));
        }
    }

    #[test]
    fn a_networks_hub_overrides_the_directory() {
        let hyogo = Prefecture::parse("兵庫県").unwrap();
        let mut hubs = vec![Hub {
            id: HubId::parse("hyogo-pro").unwrap(),
            name: "兵庫県プロフェッショナル人材戦略拠点（ひょうご専門人材相談センター）".into(),
            name_en: None,
            kind: HubKind::ProTalent,
            prefectures: vec![hyogo],
            municipalities: Vec::new(),
            from_directory: false,
            terminal: Some("hyogo-pro".into()),
            discord: None,
            slack: None,
        }];
        add_directory(&mut hubs);
        assert_eq!(hubs.len(), 1 + 47 + 44);
        let for_hyogo: Vec<&str> = hubs
            .iter()
            .filter(|h| h.prefectures.contains(&hyogo))
            .map(|h| h.id.as_str())
            .collect();
        assert_eq!(for_hyogo, ["hyogo-pro", "directory-yorozu-28"]);
        assert!(hubs[1..]
            .iter()
            .all(|h| h.from_directory && h.terminal.is_none()));
    }
}
