//! A hostile transformer: `panic` panics, `unreachable` executes a trap instruction,
//! anything else passes.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

use exports::natrium::plugin::transformation::{Guest, Message, Outcome};

struct Trapper;

fn act(subject: &str) -> Outcome {
    match subject {
        "panic" => panic!("the guest panicked on purpose"),
        "unreachable" => core::arch::wasm32::unreachable(),
        _ => Outcome::Pass,
    }
}

impl Guest for Trapper {
    fn transform(_account: String, msg: Message) -> Outcome {
        act(&msg.subject)
    }

    fn transform_batch(_account: String, msgs: Vec<Message>) -> Vec<Outcome> {
        msgs.iter().map(|m| act(&m.subject)).collect()
    }
}

export!(Trapper);
