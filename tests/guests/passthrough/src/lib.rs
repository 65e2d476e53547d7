//! A well-behaved transformer, used for the happy path, host imports and latency.
//!
//! By subject: `rewrite` → replaced (subject `rewritten`, payload upper-cased, a header
//! added); `drop` → dropped; `config` → payload replaced by the plugin's JSON config;
//! `now` → payload replaced by `host::now()`; `log` → logs through the host; `print` →
//! writes to stdout and stderr (captured into the broker log); `sleep` → tries to sleep
//! (plugins may not block: must trap); anything else passes. `transform-batch` returns one
//! outcome too few when the first message's subject is `short` (a malformed answer).

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

use exports::natrium::plugin::transformation::{Guest, Message, Outcome};
use natrium::plugin::host;
use natrium::plugin::types::Header;

struct Passthrough;

fn one(msg: Message) -> Outcome {
    match msg.subject.as_str() {
        "rewrite" => {
            let mut headers = msg.headers;
            headers.push(Header { name: "X-Rewritten".into(), value: "yes".into() });
            Outcome::Replace(Message {
                subject: "rewritten".into(),
                reply: msg.reply,
                headers,
                payload: msg.payload.to_ascii_uppercase(),
            })
        }
        "drop" => Outcome::Drop("dropped by request".into()),
        "config" => Outcome::Replace(Message { payload: host::config().into_bytes(), ..msg }),
        "now" => Outcome::Replace(Message { payload: host::now().to_string().into_bytes(), ..msg }),
        "log" => {
            host::log(
                host::Level::Info,
                "hello from the guest",
                &[("k".to_string(), "v".to_string())],
            );
            Outcome::Pass
        }
        "print" => {
            println!("to stdout");
            eprintln!("to stderr");
            Outcome::Pass
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_millis(1));
            Outcome::Pass
        }
        _ => Outcome::Pass,
    }
}

impl Guest for Passthrough {
    fn transform(_account: String, msg: Message) -> Outcome {
        one(msg)
    }

    fn transform_batch(_account: String, msgs: Vec<Message>) -> Vec<Outcome> {
        let short = msgs.first().is_some_and(|m| m.subject == "short");
        let mut out: Vec<Outcome> = msgs.into_iter().map(one).collect();
        if short {
            out.pop();
        }
        out
    }
}

export!(Passthrough);
