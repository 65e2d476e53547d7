//! A hostile transformer: `panic` panics, `unreachable` executes a trap instruction,
//! `big.*` is replaced by an 8 MiB message (over any sane max_payload), `longreason.*` is
//! dropped with a 4 MiB reason; anything else passes.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

use exports::natrium::plugin::transformation::{Guest, Message, Outcome};

struct Trapper;

const MIB: usize = 1024 * 1024;

fn act(msg: &Message) -> Outcome {
    match msg.subject.as_str() {
        "panic" => panic!("the guest panicked on purpose"),
        "unreachable" => core::arch::wasm32::unreachable(),
        s if s.starts_with("big.") => Outcome::Replace(Message {
            payload: vec![b'x'; 8 * MIB],
            ..msg.clone()
        }),
        s if s.starts_with("longreason.") => Outcome::Drop("why ".repeat(MIB)),
        _ => Outcome::Pass,
    }
}

impl Guest for Trapper {
    fn transform(_account: String, msg: Message) -> Outcome {
        act(&msg)
    }

    fn transform_batch(_account: String, msgs: Vec<Message>) -> Vec<Outcome> {
        msgs.iter().map(act).collect()
    }
}

export!(Trapper);
