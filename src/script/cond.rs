//! Conditions on answers and tags, shared by script branches and routing
//! rules, so administrators learn one condition language.

use crate::answer::AnswerValue;
use crate::domain::industry::{Jsic, SizeLimits};
use crate::domain::prefecture::Region;
use crate::script::NodeIx;

#[derive(Debug, Clone)]
pub enum Cond {
    Answer {
        node: NodeIx,
        key: String,
        test: Test,
    },
    Tag(String),
    /// The company's size under 中小企業基本法, judged from the industry,
    /// employees and capital answers (see [`Size`]).
    Size {
        size: Size,
        /// `false` matches every company the law does not make `size`.
        want: bool,
        industry: NodeIx,
        employees: NodeIx,
        capital: NodeIx,
    },
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// The company sizes of 中小企業基本法 第2条.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 中小企業者: employees or capital within the sector's limit.
    Sme,
    /// 小規模企業者: employees within 20, or 5 in commerce and services
    /// (宿泊業・娯楽業 keep 20).
    SmallBusiness,
}

impl Size {
    pub fn key(self) -> &'static str {
        match self {
            Size::Sme => "sme",
            Size::SmallBusiness => "small_business",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Test {
    /// Compared with the answer's key form: option id, "yes"/"no",
    /// canonical prefecture name, number or text.
    Equals(String),
    In(Vec<String>),
    /// A multiple-choice answer contains this option id.
    Includes(String),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Answered(bool),
    Region(Region),
    /// The owner's municipality is one of `codes` (JIS X 0402); `name` is
    /// the area or municipality as the routing file names it.
    Area {
        name: String,
        codes: Vec<u32>,
    },
}

/// What a condition can look at. The engine's session state implements it;
/// routing explanations use the same view.
pub trait Facts {
    fn answer(&self, node: NodeIx) -> Option<&AnswerValue>;
    fn has_tag(&self, tag: &str) -> bool;
}

impl Cond {
    pub fn eval(&self, f: &dyn Facts) -> bool {
        match self {
            Cond::Tag(t) => f.has_tag(t),
            Cond::All(cs) => cs.iter().all(|c| c.eval(f)),
            Cond::Any(cs) => cs.iter().any(|c| c.eval(f)),
            Cond::Not(c) => !c.eval(f),
            Cond::Size {
                size,
                want,
                industry,
                employees,
                capital,
            } => size_holds(f, *size, *industry, *employees, *capital) == *want,
            Cond::Answer { node, test, .. } => {
                let v = f.answer(*node).filter(|v| !v.is_skipped());
                match (test, v) {
                    (Test::Answered(want), v) => v.is_some() == *want,
                    (_, None) => false,
                    (Test::Equals(s), Some(v)) => eq(v, s),
                    (Test::In(list), Some(v)) => list.iter().any(|s| eq(v, s)),
                    (Test::Includes(id), Some(AnswerValue::Multi(ids))) => {
                        ids.iter().any(|x| x == id)
                    }
                    (Test::Includes(id), Some(AnswerValue::Choice(x))) => x == id,
                    (Test::Includes(id), Some(AnswerValue::Other(o))) => o.id == *id,
                    (Test::Includes(id), Some(AnswerValue::Industry { option, .. })) => {
                        option == id
                    }
                    (Test::Includes(_), Some(_)) => false,
                    (Test::Lt(n), Some(v)) => v.as_number().is_some_and(|x| x < *n),
                    (Test::Le(n), Some(v)) => v.as_number().is_some_and(|x| x <= *n),
                    (Test::Gt(n), Some(v)) => v.as_number().is_some_and(|x| x > *n),
                    (Test::Ge(n), Some(v)) => v.as_number().is_some_and(|x| x >= *n),
                    (Test::Region(r), Some(AnswerValue::Prefecture(p))) => {
                        p.prefecture().region() == *r
                    }
                    (Test::Region(_), Some(_)) => false,
                    (Test::Area { codes, .. }, Some(AnswerValue::Prefecture(p))) => {
                        p.municipality().is_some_and(|m| codes.contains(&m.code()))
                    }
                    (Test::Area { .. }, Some(_)) => false,
                }
            }
        }
    }

    /// A short human-readable form, used when explaining routing decisions.
    pub fn describe(&self) -> String {
        match self {
            Cond::Tag(t) => format!("tag {t}"),
            Cond::All(cs) => format!(
                "all of ({})",
                cs.iter().map(Cond::describe).collect::<Vec<_>>().join("; ")
            ),
            Cond::Any(cs) => format!(
                "any of ({})",
                cs.iter().map(Cond::describe).collect::<Vec<_>>().join("; ")
            ),
            Cond::Not(c) => format!("not ({})", c.describe()),
            Cond::Size { size, want, .. } => {
                format!("{} {want} (中小企業基本法)", size.key())
            }
            Cond::Answer { key, test, .. } => match test {
                Test::Equals(s) => format!("{key} = {s}"),
                Test::In(l) => format!("{key} in [{}]", l.join(", ")),
                Test::Includes(s) => format!("{key} includes {s}"),
                Test::Lt(n) => format!("{key} < {n}"),
                Test::Le(n) => format!("{key} <= {n}"),
                Test::Gt(n) => format!("{key} > {n}"),
                Test::Ge(n) => format!("{key} >= {n}"),
                Test::Answered(true) => format!("{key} answered"),
                Test::Answered(false) => format!("{key} not answered"),
                Test::Region(r) => format!("{key} in region {}", r.name_ja()),
                Test::Area { name, .. } => format!("{key} in area {name}"),
            },
        }
    }

    /// Every tag the condition mentions.
    pub fn tags<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Cond::Tag(t) => out.push(t),
            Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| c.tags(out)),
            Cond::Not(c) => c.tags(out),
            Cond::Answer { .. } | Cond::Size { .. } => {}
        }
    }
}

/// Whether the answers make the company `size`. The industry answer's JSIC
/// class sets the limits; a plain option is judged by the strictest limits
/// of its classes, so a broad answer never makes a company small that the
/// law might not (see [`SizeLimits::for_industry`]). Unanswered employees
/// make no company small.
fn size_holds(
    f: &dyn Facts,
    size: Size,
    industry: NodeIx,
    employees: NodeIx,
    capital: NodeIx,
) -> bool {
    let answered = |n| f.answer(n).filter(|v| !v.is_skipped());
    let (option, class) = match answered(industry) {
        Some(AnswerValue::Industry { option, class }) => {
            (Some(option.as_str()), Jsic::by_code(class))
        }
        Some(AnswerValue::Choice(id)) => (Some(id.as_str()), None),
        Some(AnswerValue::Other(o)) => (Some(o.id.as_str()), None),
        _ => (None, None),
    };
    let limits = SizeLimits::for_industry(option, class);
    let people = answered(employees).and_then(AnswerValue::as_number);
    match size {
        Size::SmallBusiness => people.is_some_and(|e| limits.is_small(e)),
        Size::Sme => limits.is_sme(people, answered(capital).and_then(AnswerValue::as_number)),
    }
}

fn eq(v: &AnswerValue, s: &str) -> bool {
    match v {
        AnswerValue::Number(q) => s.parse::<f64>().is_ok_and(|n| n == q.value),
        AnswerValue::Multi(ids) => ids.len() == 1 && ids[0] == s,
        other => other.as_key() == s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::number::Quantity;

    struct Answers(Vec<(NodeIx, AnswerValue)>);

    impl Facts for Answers {
        fn answer(&self, node: NodeIx) -> Option<&AnswerValue> {
            self.0.iter().find(|(n, _)| *n == node).map(|(_, v)| v)
        }
        fn has_tag(&self, _: &str) -> bool {
            false
        }
    }

    fn num(v: f64) -> AnswerValue {
        AnswerValue::Number(Quantity {
            value: v,
            unit: None,
            approx: false,
            detail: None,
        })
    }

    fn classified(words: &str) -> AnswerValue {
        let c = Jsic::classify(words).unwrap();
        AnswerValue::Industry {
            option: c.script_option().to_string(),
            class: c.code().to_string(),
        }
    }

    /// Evaluates `size` (want: true) for industry, employees, capital.
    fn holds(size: Size, industry: AnswerValue, people: Option<f64>, capital: Option<f64>) -> bool {
        let (i, e, k): (NodeIx, NodeIx, NodeIx) = (0, 1, 2);
        let mut answers = vec![(i, industry)];
        answers.extend(people.map(|p| (e, num(p))));
        answers.extend(capital.map(|c| (k, num(c))));
        let cond = Cond::Size {
            size,
            want: true,
            industry: i,
            employees: e,
            capital: k,
        };
        let yes = cond.eval(&Answers(answers.clone()));
        let not = Cond::Size {
            size,
            want: false,
            industry: i,
            employees: e,
            capital: k,
        };
        assert_eq!(not.eval(&Answers(answers)), !yes, "`false` is the negation");
        yes
    }

    #[test]
    fn the_law_decides_from_the_class_employees_and_capital() {
        use Size::*;
        // A 宿泊業 hotel with 15 people is small (宿泊業 keeps 20).
        assert!(holds(SmallBusiness, classified("旅館"), Some(15.0), None));
        // A wholesaler with 15 people and 1億円 is not small, but is an SME.
        let w = || classified("各種商品卸売業");
        assert!(!holds(SmallBusiness, w(), Some(15.0), Some(1e8)));
        assert!(holds(Sme, w(), Some(15.0), Some(1e8)));
        // Over the staff limit, the capital still makes it an SME.
        assert!(holds(Sme, w(), Some(150.0), Some(1e8)));
        assert!(!holds(Sme, w(), Some(150.0), Some(2e8)));
        // A services company with 8 people is not small.
        assert!(!holds(
            SmallBusiness,
            classified("リネンサプライ"),
            Some(8.0),
            None
        ));
        // A plain option is judged by the strictest of its classes.
        let food = || AnswerValue::Choice("food_lodging".into());
        assert!(!holds(SmallBusiness, food(), Some(15.0), None));
        assert!(holds(SmallBusiness, food(), Some(5.0), None));
        assert!(holds(
            SmallBusiness,
            AnswerValue::Choice("manufacturing".into()),
            Some(20.0),
            None
        ));
        // Unanswered or skipped employees make no company small.
        assert!(!holds(SmallBusiness, classified("旅館"), None, None));
        assert!(!holds(Sme, classified("旅館"), None, None));
    }
}
