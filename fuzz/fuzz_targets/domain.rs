//! Every normaliser and parser of `src/domain`, one target dispatching on
//! the first byte, so one corpus serves them all and a new parser is one
//! more arm. Besides not panicking, the normalisers keep the properties the
//! rest of the bot relies on (idempotence, nothing invisible left behind).
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use madoguchi::domain::contact::{Email, PhoneJp};
use madoguchi::domain::date::parse_date;
use madoguchi::domain::ids::{CaseId, HubId, UserKey};
use madoguchi::domain::number::{parse_quantity, EmployeeCount, MoneyYen};
use madoguchi::domain::prefecture::{Prefecture, Region};
use madoguchi::domain::text::{
    clean_text, fold_for_match, is_blank_input, katakana_to_hiragana, normalize_input, FreeText,
};

/// Units the shipped scripts ask for, and one they do not know.
const UNITS: [Option<&str>; 5] = [None, Some("名"), Some("円"), Some("万円"), Some("m2")];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    // Answers are decoded before they reach the domain (see src/chat.rs);
    // lossy decoding is what a caller does with bytes it already refused.
    let s = &String::from_utf8_lossy(rest);
    match which % 12 {
        0 => {
            let n = normalize_input(s);
            assert_eq!(normalize_input(&n), n, "normalize_input is idempotent");
            assert_eq!(is_blank_input(s), n.is_empty());
            assert_eq!(n.trim(), n);
        }
        1 => {
            let c = clean_text(s);
            assert_eq!(clean_text(&c), c, "clean_text is idempotent");
            assert!(!c.contains('\r') && !c.contains('\t'));
        }
        2 => {
            let f = fold_for_match(s);
            assert!(!f.chars().any(char::is_whitespace));
            let _ = katakana_to_hiragana(s);
        }
        3 => {
            let min = rest.first().map_or(0, |b| (*b % 4) as usize);
            if let Ok(t) = FreeText::parse(s, min, 4000) {
                let n = t.as_str().chars().count();
                assert!(n >= min.max(1) && n <= 4000);
            }
        }
        4 => {
            let _ = Email::parse(s);
        }
        5 => {
            if let Ok(p) = PhoneJp::parse(s) {
                let _ = p.display();
            }
        }
        6 => {
            // A few "todays", including the ends of months and years, where
            // date arithmetic goes wrong first.
            for (y, m, d) in [(2026, 1, 31), (2026, 12, 31), (2028, 2, 29), (2026, 6, 15)] {
                let today = NaiveDate::from_ymd_opt(y, m, d).unwrap();
                let _ = parse_date(s, today);
            }
        }
        7 => {
            for unit in UNITS {
                if let Ok(q) = parse_quantity(s, unit) {
                    let _ = q.display_en();
                }
            }
        }
        8 => {
            let _ = EmployeeCount::parse(s);
            let _ = MoneyYen::parse(s);
        }
        9 => {
            let _ = Prefecture::parse(s);
            let _ = Region::parse(s);
        }
        10 => {
            let _ = HubId::parse(s);
            let _ = UserKey::parse(s);
            let _ = CaseId::parse(s);
        }
        _ => {
            let _ = madoguchi::script::parse_region(s);
        }
    }
});
