//! A hostile transformer: loops forever unless the subject is `ok`.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

use exports::natrium::plugin::transformation::{Guest, Message, Outcome};

struct Looper;

fn spin(subject: &str) -> Outcome {
    if subject == "ok" {
        return Outcome::Pass;
    }
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Guest for Looper {
    fn transform(_account: String, msg: Message) -> Outcome {
        spin(&msg.subject)
    }

    fn transform_batch(_account: String, msgs: Vec<Message>) -> Vec<Outcome> {
        msgs.iter().map(|m| spin(&m.subject)).collect()
    }
}

export!(Looper);
