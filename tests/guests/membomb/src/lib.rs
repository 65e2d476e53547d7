//! A hostile transformer: allocates without bound unless the subject is `ok`.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

use exports::natrium::plugin::transformation::{Guest, Message, Outcome};

struct MemBomb;

fn bomb(subject: &str) -> Outcome {
    if subject == "ok" {
        return Outcome::Pass;
    }
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // black_box keeps the optimizer from removing allocations nobody reads.
        let chunk = std::hint::black_box(vec![1u8; 1 << 20]);
        hoard.push(chunk);
        std::hint::black_box(&hoard);
    }
}

impl Guest for MemBomb {
    fn transform(_account: String, msg: Message) -> Outcome {
        bomb(&msg.subject)
    }

    fn transform_batch(_account: String, msgs: Vec<Message>) -> Vec<Outcome> {
        msgs.iter().map(|m| bomb(&m.subject)).collect()
    }
}

export!(MemBomb);
