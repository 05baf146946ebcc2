//! The script compiler (YAML, conditions, templates) on arbitrary text.
//!
//! The first byte chooses what the rest replaces: even, the script (against
//! the shipped routing file); odd, the routing file (against the shipped
//! Japanese script). Compiling must never panic, whatever the text; a flow
//! that compiles must have a start node and a version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use madoguchi::script::{compile_flow, Lang, Sources};

const SCRIPT: &str = include_str!("../../dialogs/first_contact.ja.yaml");
const ROUTING: &str = include_str!("../../dialogs/routing.yaml");

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    // Invalid UTF-8 never reaches the compiler: the loader reads text.
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (script_text, routing_text) = if which % 2 == 0 {
        (text.to_string(), ROUTING.to_string())
    } else {
        (SCRIPT.to_string(), text.to_string())
    };
    let (flow, diags) = compile_flow(Sources {
        script_name: "fuzz.ja.yaml".into(),
        script_text,
        routing_name: "routing.yaml".into(),
        routing_text,
    });
    if let Some(flow) = flow {
        assert!(!flow.version.is_empty());
        assert!(!flow.nodes.is_empty());
    }
    // Every diagnostic can be shown in both languages without panicking.
    for d in &diags {
        let _ = d.render(Lang::Ja);
        let _ = d.render(Lang::En);
    }
});
