//! A mapper (not a transformer): loading it as a transformer must fail with an error naming
//! the missing export. Loaded as a mapper it maps `old.X` to `new.X` and is deterministic.

wit_bindgen::generate!({ path: "../../../wit", world: "mapper" });

use exports::natrium::plugin::mapping::Guest;

struct Mapper;

impl Guest for Mapper {
    fn deterministic() -> bool {
        true
    }

    fn map(account: String, subject: String) -> Option<String> {
        if account == "trap" {
            panic!("mapper asked to trap");
        }
        subject.strip_prefix("old.").map(|rest| format!("new.{rest}"))
    }
}

export!(Mapper);
