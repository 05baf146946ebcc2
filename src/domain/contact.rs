//! Contact details: e-mail addresses and Japanese phone numbers.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::text::{excerpt, normalize_input};

/// A pragmatic check, not RFC 5322: a dot-atom local part and a domain of
/// LDH labels whose last label starts with a letter. This accepts every
/// address owners realistically have and rejects the usual typos.
static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z](?:[a-z0-9-]*[a-z0-9])?$",
    )
    .expect("the e-mail pattern is a valid constant")
});

/// The mail domains of Japan's mobile carriers (NTT docomo, au, SoftBank
/// and the older brands they absorbed), whose addresses may break the
/// dot-atom rule; a subdomain (`d.vodafone.ne.jp`) counts too.
const CARRIER_DOMAINS: &[&str] = &[
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "au.com",
    "softbank.ne.jp",
    "i.softbank.jp",
    "vodafone.ne.jp",
    "disney.ne.jp",
    "pdx.ne.jp",
    "willcom.com",
    "emnet.ne.jp",
];

/// An e-mail address with its domain lowercased. The local part keeps its
/// case, because servers may (rarely) treat it as significant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Errors from `Email::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmailError {
    #[error("no e-mail address given: type it in the form name@example.jp")]
    Empty,
    #[error("the e-mail address is too long ({0} characters): check it, addresses have at most 254 characters")]
    TooLong(usize),
    #[error(
        "「{0}」 contains spaces: type the e-mail address without spaces, e.g. name@example.jp"
    )]
    ContainsSpace(String),
    #[error("「{0}」 is not an e-mail address: type it in the form name@example.jp")]
    Invalid(String),
}

impl Email {
    pub fn parse(s: &str) -> Result<Email, EmailError> {
        // NFKC turns ＠ and full-width letters into ASCII; the ideographic
        // full stop is a common IME slip for the dot in the domain.
        let normalized = normalize_input(s).replace('。', ".");
        let trimmed = normalized
            .strip_prefix("mailto:")
            .unwrap_or(&normalized)
            .trim_matches(|c| matches!(c, '<' | '>'));
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let len = trimmed.chars().count();
        if len > 254 {
            return Err(EmailError::TooLong(len));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(EmailError::ContainsSpace(excerpt(trimmed)));
        }
        let invalid = || EmailError::Invalid(excerpt(trimmed));
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(invalid)?;
        if local.len() > 64 {
            return Err(invalid());
        }
        let address = format!("{local}@{}", domain.to_ascii_lowercase());
        if EMAIL_RE.is_match(&address) {
            return Ok(Email(address));
        }
        // Japan's mobile carriers issued addresses with two dots in a row
        // or a dot before the @ (taro..yamada@docomo.ne.jp) until 2009, and
        // still deliver to them; owners who have one cannot give another.
        // Such a local part is checked as if its dots were single, so every
        // other rule still applies, and it is kept exactly as typed.
        let lower_domain = domain.to_ascii_lowercase();
        let carrier = CARRIER_DOMAINS
            .iter()
            .any(|d| lower_domain == *d || lower_domain.ends_with(&format!(".{d}")));
        if carrier && !local.starts_with('.') && local.contains('.') {
            let tidy = local
                .split('.')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(".");
            if EMAIL_RE.is_match(&format!("{tidy}@{lower_domain}")) {
                return Ok(Email(address));
            }
        }
        Err(invalid())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// A Japanese phone number that is valid in the national numbering plan,
/// stored as its national digits with the trunk 0 (e.g. "0773421234").
///
/// Validation and grouping come from the `phonenumber` crate (a port of
/// Google's libphonenumber and its metadata for Japan), not from our own
/// tables: Japanese area codes run from two to five digits (03, 078, 0773,
/// 01267) and the grouping of a number depends on its exact prefix, which
/// only the published numbering plan knows.
///
/// The grouped form is worked out once, when the number is parsed: the
/// sheet, the confirmation and the answer list show it at nearly every
/// turn near the end of a consultation, and grouping parses the number
/// with the numbering plan again, which cost more than the rest of such a
/// turn's rendering. It is a function of the digits, so equality and
/// hashing are unchanged, and only the digits are serialised.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneJp {
    digits: String,
    national: String,
}

impl std::fmt::Debug for PhoneJp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PhoneJp").field(&self.digits).finish()
    }
}

/// Errors from `PhoneJp::parse`. The English text is the `Display`;
/// [`PhoneError::message_ja`] says the same for Japanese scripts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("no phone number given: type it like 090-1234-5678 or 078-123-4567")]
    Empty,
    #[error("「{0}」 is not a phone number: use digits and hyphens only, e.g. 090-1234-5678")]
    Invalid(String),
    #[error("the phone number has {0} digits: Japanese numbers have 10 or 11 digits including the leading 0, e.g. 090-1234-5678 or 0773-42-1234")]
    WrongLength(usize),
    #[error("the phone number must start with 0 (or +81): type it like 090-1234-5678")]
    NoLeadingZero,
    /// Two or more numbers in one answer (「078-123-4567 / 090-1234-5678」):
    /// their digits run together would be no number at all.
    #[error(
        "there are {0} phone numbers: please send just one, the one you are easiest to reach on"
    )]
    Several(usize),
    /// The digits have a plausible length but no such number exists in the
    /// Japanese numbering plan (an unassigned prefix, a mobile number with
    /// ten digits, a landline with eleven, 00000000000).
    #[error("{0} is not a number in the Japanese numbering plan: check the digits (landlines have 10 digits, e.g. 0773-42-1234; mobiles 11, e.g. 090-1234-5678)")]
    NotInPlan(String),
}

impl PhoneError {
    /// The reason in Japanese, for owners answering a Japanese script.
    pub fn message_ja(&self) -> String {
        match self {
            PhoneError::Empty => {
                "電話番号が空です。090-1234-5678 や 078-123-4567 のように入力してください。".into()
            }
            PhoneError::Invalid(s) => format!(
                "「{s}」は電話番号として読めません。数字とハイフンだけで入力してください（例: 090-1234-5678）。"
            ),
            PhoneError::WrongLength(n) => format!(
                "電話番号の桁数が{n}桁です。日本の電話番号は先頭の0を含めて10桁か11桁です（例: 0773-42-1234、090-1234-5678）。"
            ),
            PhoneError::NoLeadingZero => {
                "電話番号は0（または+81）から始めてください（例: 090-1234-5678）。".into()
            }
            PhoneError::Several(n) => format!(
                "電話番号が{n}つ書かれています。いちばん連絡のつきやすい番号をひとつだけお送りください（例: 090-1234-5678）。"
            ),
            PhoneError::NotInPlan(s) => format!(
                "{s} は日本で使われている番号の形ではありません。数字をご確認ください（固定電話は10桁 例: 0773-42-1234、携帯電話は11桁 例: 090-1234-5678）。"
            ),
        }
    }
}

/// Every dash-like character a phone keyboard or IME may produce.
const SEPARATORS: &[char] = &[
    '-', 'ー', '−', '‐', '‑', '‒', '–', '—', '―', '－', '.', '(', ')', '（', '）', '/',
];

/// The number without a note in brackets after it (「078-123-4567（平日9時〜
/// 17時）」「090-1234-5678 (携帯)」): the note says when or which, not
/// what to dial. A note with an extension (内線, ext) is part of what to
/// dial and stays, so the answer is asked again rather than cut short; so
/// does a bracket holding only digits, which is part of the number
/// (「(06) 1234-5678」), and one holding another phone number.
fn without_trailing_note(s: &str) -> &str {
    let t = s.trim_end();
    let Some(body) = t.strip_suffix(')') else {
        return s;
    };
    let Some(open) = body.rfind('(') else {
        return s;
    };
    let note = &body[open + 1..];
    let lower = note.to_lowercase();
    let dialled = note
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_whitespace() || SEPARATORS.contains(&c));
    // A note holding a number of its own (「17時以降は090-1111-2222」) is a
    // second number, not a remark: kept, so that the answer is asked again
    // for one number rather than the second dropped without a word.
    let digits = note.chars().filter(char::is_ascii_digit).count();
    if dialled || digits >= 9 || lower.contains("内線") || lower.contains("ext") || open == 0 {
        return s;
    }
    body[..open].trim_end()
}

impl PhoneJp {
    pub fn parse(s: &str) -> Result<PhoneJp, PhoneError> {
        let normalized = normalize_input(s);
        // Two numbers, each with its own digits, are two answers: counted
        // before the digits are run together into one too-long number.
        let several = normalized
            .split(|c: char| c.is_whitespace() || "/、,・;()".contains(c) || c == 'と')
            .filter(|p| p.chars().filter(char::is_ascii_digit).count() >= 10)
            .count();
        if several >= 2 {
            return Err(PhoneError::Several(several));
        }
        let normalized = without_trailing_note(&normalized);
        let lower = normalized.to_lowercase();
        let without_label = lower
            .strip_prefix("tel:")
            .or_else(|| lower.strip_prefix("tel"))
            .unwrap_or(&lower);
        let compact: String = without_label
            .chars()
            .filter(|c| !c.is_whitespace() && !SEPARATORS.contains(c))
            .collect();
        if compact.is_empty() {
            return Err(PhoneError::Empty);
        }
        // +81 replaces the trunk 0; some people keep it anyway: +81 (0)90….
        let digits = match compact.strip_prefix("+81") {
            Some(rest) if rest.starts_with('0') => rest.to_string(),
            Some(rest) => format!("0{rest}"),
            None => compact,
        };
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(PhoneError::Invalid(excerpt(normalized)));
        }
        if !digits.starts_with('0') {
            return Err(PhoneError::NoLeadingZero);
        }
        if !(10..=11).contains(&digits.len()) {
            return Err(PhoneError::WrongLength(digits.len()));
        }
        // Whether the number exists is the numbering plan's call. A 0 after
        // the trunk 0 is the international call prefix, never a number.
        let not_in_plan = || PhoneError::NotInPlan(excerpt(&digits));
        if digits.starts_with("00") {
            return Err(not_in_plan());
        }
        let number = phonenumber::parse(Some(phonenumber::country::Id::JP), &digits)
            .map_err(|_| not_in_plan())?;
        if !phonenumber::is_valid(&number) || number.code().value() != 81 {
            return Err(not_in_plan());
        }
        let national = number
            .format()
            .mode(phonenumber::Mode::National)
            .to_string();
        Ok(PhoneJp { digits, national })
    }

    /// The digits only, e.g. "09012345678".
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// The national form people dial, grouped by the numbering plan:
    /// 0773-42-1234, 078-123-4567, 03-1234-5678, 090-1234-5678,
    /// 0120-123-456.
    pub fn display(&self) -> String {
        self.national.clone()
    }
}

impl std::fmt::Display for PhoneJp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.national)
    }
}

impl TryFrom<String> for PhoneJp {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PhoneJp::parse(&s)
    }
}

impl From<PhoneJp> for String {
    fn from(p: PhoneJp) -> String {
        p.digits
    }
}

/// Compiles the e-mail pattern and loads the phone numbering plan now (see
/// [`crate::domain::warm_up`]). The numbering plan's data and patterns are
/// loaded by the `phonenumber` crate on its first parse.
pub(crate) fn warm_up() {
    LazyLock::force(&EMAIL_RE);
    let _ = PhoneJp::parse("078-362-9000");
    let _ = PhoneJp::parse("090-1234-5678");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_emails() {
        let cases = [
            ("name@example.jp", "name@example.jp"),
            (" Taro.Yamada@Example.CO.JP ", "Taro.Yamada@example.co.jp"),
            ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
            ("taro@example。jp", "taro@example.jp"),
            ("mailto:a+tag@mail.example.com", "a+tag@mail.example.com"),
            ("<x_y@sub-domain.example.jp>", "x_y@sub-domain.example.jp"),
            ("a@xn--eckwd4c7c.xn--zckzah", "a@xn--eckwd4c7c.xn--zckzah"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Email::parse(input).map(Email::into_inner),
                Ok(want.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn invalid_emails() {
        for s in [
            "name",
            "name@",
            "@example.jp",
            "name@example",
            "name@@example.jp",
            "na..me@example.jp",
            ".name@example.jp",
            "name@-example.jp",
            "name@example.123",
            "名前@example.jp",
            "name@例え.jp",
        ] {
            assert!(
                matches!(Email::parse(s), Err(EmailError::Invalid(_))),
                "{s}: {:?}",
                Email::parse(s)
            );
        }
        assert_eq!(Email::parse("  "), Err(EmailError::Empty));
        assert!(matches!(
            Email::parse("na me@example.jp"),
            Err(EmailError::ContainsSpace(_))
        ));
        let long = format!("{}@example.jp", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong(261)));
        assert!(Email::parse(&format!("{}@example.jp", "a".repeat(65))).is_err());
        assert_eq!(
            Email::parse("name").unwrap_err().to_string(),
            "「name」 is not an e-mail address: type it in the form name@example.jp"
        );
    }

    /// Mobile-carrier addresses that break the dot-atom rule are real and
    /// deliverable; they are accepted as typed, and only on those domains.
    #[test]
    fn carrier_addresses_with_odd_dots() {
        for s in [
            "taro..yamada@docomo.ne.jp",
            "taro.@ezweb.ne.jp",
            "taro..@softbank.ne.jp",
            "Taro.@d.vodafone.ne.jp",
            "taro...y@au.com",
        ] {
            assert_eq!(
                Email::parse(s).map(Email::into_inner).as_deref(),
                Ok(s),
                "{s}"
            );
        }
        assert_eq!(
            Email::parse("taro.@EZweb.ne.jp").map(Email::into_inner),
            Ok("taro.@ezweb.ne.jp".to_string())
        );
        // Every other rule still holds there, and elsewhere dots stay strict.
        for s in [
            ".taro@docomo.ne.jp",
            "ta ro..@docomo.ne.jp",
            "taro..(x)@docomo.ne.jp",
            "taro..yamada@example.jp",
            "taro.@gmail.com",
            "taro..yamada@docomo.ne",
            "taro..yamada@notdocomo.ne.jp",
        ] {
            assert!(Email::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn email_serde_round_trip() {
        let e = Email::parse("Taro@Example.jp").unwrap();
        assert_eq!(e.as_str(), "Taro@example.jp");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, "\"Taro@example.jp\"");
        assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), e);
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    #[test]
    fn phone_numbers_in_many_shapes() {
        let cases = [
            ("090-1234-5678", "09012345678", "090-1234-5678"),
            ("０９０ー１２３４ー５６７８", "09012345678", "090-1234-5678"),
            ("090−1234−5678", "09012345678", "090-1234-5678"),
            ("090‐1234‐5678", "09012345678", "090-1234-5678"),
            ("090―1234―5678", "09012345678", "090-1234-5678"),
            ("090－1234－5678", "09012345678", "090-1234-5678"),
            ("090 1234 5678", "09012345678", "090-1234-5678"),
            ("+81 90-1234-5678", "09012345678", "090-1234-5678"),
            ("+81 (0)90 1234 5678", "09012345678", "090-1234-5678"),
            ("＋８１９０１２３４５６７８", "09012345678", "090-1234-5678"),
            ("080-2345-6789", "08023456789", "080-2345-6789"),
            ("070-1234-5678", "07012345678", "070-1234-5678"),
            ("(03) 1234-5678", "0312345678", "03-1234-5678"),
            ("06-1234-5678", "0612345678", "06-1234-5678"),
            ("078-123-4567", "0781234567", "078-123-4567"),
            ("075-123-4567", "0751234567", "075-123-4567"),
            ("0120-123-456", "0120123456", "0120-123-456"),
            ("0570-000-123", "0570000123", "0570-000-123"),
            ("0800-123-4567", "08001234567", "0800-123-4567"),
            ("050-1234-5678", "05012345678", "050-1234-5678"),
            ("TEL: 078-123-4567", "0781234567", "078-123-4567"),
        ];
        for (input, digits, shown) in cases {
            let p = PhoneJp::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.as_str(), digits, "{input}");
            assert_eq!(p.display(), shown, "{input}");
            assert_eq!(p.to_string(), shown);
        }
    }

    /// Four- and five-digit area codes keep their grouping, however the
    /// owner hyphenated them: 077-342-1234 and 0773-42-1234 are the same
    /// digits, and the sheet must show the area code the numbering plan
    /// knows (綾部 0773, 福知山 0773, 宮津 0772, 七尾 0767, 豊岡 0796).
    #[test]
    fn long_area_codes_keep_their_grouping() {
        let cases = [
            ("0773-42-1234", "0773-42-1234"),
            ("077-342-1234", "0773-42-1234"),
            ("0773421234", "0773-42-1234"),
            ("0772-22-1234", "0772-22-1234"),
            ("0767-52-1234", "0767-52-1234"),
            ("0796-22-1234", "0796-22-1234"),
            ("0749-22-1234", "0749-22-1234"),
            ("01267-2-1234", "01267-2-1234"),
            ("011-222-1234", "011-222-1234"),
        ];
        for (input, shown) in cases {
            let p = PhoneJp::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.display(), shown, "{input}");
        }
    }

    #[test]
    fn invalid_phone_numbers() {
        assert_eq!(PhoneJp::parse(""), Err(PhoneError::Empty));
        // A mobile prefix needs 11 digits and a landline 10: the plan, not
        // the overall length, decides.
        for s in [
            "090-1234-567",
            "078-123-4567-8",
            "0773-42-12345",
            "00000000000",
            "0000000000",
        ] {
            assert!(
                matches!(PhoneJp::parse(s), Err(PhoneError::NotInPlan(_))),
                "{s}: {:?}",
                PhoneJp::parse(s)
            );
        }
        assert_eq!(
            PhoneJp::parse("090-1234-56"),
            Err(PhoneError::WrongLength(9))
        );
        assert_eq!(
            PhoneJp::parse("090-1234-567890"),
            Err(PhoneError::WrongLength(13))
        );
        assert_eq!(
            PhoneJp::parse("90-1234-5678"),
            Err(PhoneError::NoLeadingZero)
        );
        assert!(matches!(
            PhoneJp::parse("090-abcd-5678"),
            Err(PhoneError::Invalid(_))
        ));
        assert!(matches!(
            PhoneJp::parse("+1 555 123 4567"),
            Err(PhoneError::Invalid(_))
        ));
        assert_eq!(
            PhoneJp::parse("12345").unwrap_err().to_string(),
            "the phone number must start with 0 (or +81): type it like 090-1234-5678"
        );
        let e = PhoneJp::parse("078-123-4567-8").unwrap_err();
        assert!(e.to_string().contains("07812345678"), "{e}");
        assert!(e.message_ja().contains("数字をご確認ください"), "{e}");
    }

    /// A note after the number says when or which line; the number is
    /// read and the note dropped, but never an extension.
    #[test]
    fn a_note_in_brackets_after_the_number_is_dropped() {
        for (s, want) in [
            ("078-123-4567（平日9時〜17時）", "0781234567"),
            ("078-123-4567 (平日のみ)", "0781234567"),
            ("090-1234-5678（携帯）", "09012345678"),
            ("(06) 1234-5678", "0612345678"),
        ] {
            assert_eq!(
                PhoneJp::parse(s).map(|p| p.as_str().to_string()),
                Ok(want.into()),
                "{s}"
            );
        }
        assert!(PhoneJp::parse("078-123-4567（内線12）").is_err());
        assert!(PhoneJp::parse("078-123-4567 (ext. 12)").is_err());
    }

    /// Two numbers are asked back as such, not as a 21-digit number.
    #[test]
    fn two_numbers_are_asked_for_one() {
        for s in [
            "078-123-4567 / 090-1234-5678",
            "078-123-4567、090-1234-5678",
            "078-123-4567 090-1234-5678",
            "0781234567と09012345678",
        ] {
            assert_eq!(PhoneJp::parse(s), Err(PhoneError::Several(2)), "{s}");
        }
        assert!(PhoneError::Several(2).message_ja().contains("ひとつだけ"));
        // A second number in a note is not dropped with the note.
        assert_eq!(
            PhoneJp::parse("078-123-4567（17時以降は090-1111-2222）"),
            Err(PhoneError::Several(2))
        );
        // Groups of a single number are not several numbers.
        assert!(PhoneJp::parse("090 1234 5678").is_ok());
        assert!(PhoneJp::parse("+81 90-1234-5678").is_ok());
    }

    #[test]
    fn phone_serde_round_trip() {
        let p = PhoneJp::parse("090-1234-5678").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"09012345678\"");
        assert_eq!(serde_json::from_str::<PhoneJp>(&json).unwrap(), p);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = Email::parse(&s);
            if let Ok(p) = PhoneJp::parse(&s) {
                let _ = p.display();
            }
        }
    }
}
