//! A `batch-transformer` guest: one call per batch, messages read on demand.
//!
//! With the config `{"mode":"pass"}` it passes every message without reading any (the
//! benchmark's pass-through). Otherwise it reads each subject: `rewrite` → replaced (subject
//! `rewritten`, payload upper-cased, reply and headers kept); `drop` → dropped; `twice` →
//! two decisions for the same message (a malformed answer); anything else passes.

wit_bindgen::generate!({ path: "../../../wit", world: "batch-transformer" });

use exports::natrium::plugin::batch_transformation::{Action, Decision, Guest};
use natrium::plugin::pending;
use natrium::plugin::types::Message;
use std::sync::OnceLock;

struct BatchPass;

fn pass_all() -> bool {
    static MODE: OnceLock<bool> = OnceLock::new();
    *MODE.get_or_init(|| natrium::plugin::host::config().contains("\"pass\""))
}

impl Guest for BatchPass {
    fn transform_pending(_account: String, count: u32) -> Vec<Decision> {
        if pass_all() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for index in 0..count {
            match pending::subject(index).as_str() {
                "rewrite" => out.push(Decision {
                    index,
                    action: Action::Replace(Message {
                        subject: "rewritten".into(),
                        reply: pending::reply(index),
                        headers: pending::headers(index),
                        payload: pending::payload(index).to_ascii_uppercase(),
                    }),
                }),
                "drop" => out.push(Decision {
                    index,
                    action: Action::Drop(format!("dropped {} bytes", pending::payload_len(index))),
                }),
                "twice" => {
                    for _ in 0..2 {
                        out.push(Decision { index, action: Action::Drop("twice".into()) });
                    }
                }
                _ => {}
            }
        }
        out
    }
}

export!(BatchPass);
