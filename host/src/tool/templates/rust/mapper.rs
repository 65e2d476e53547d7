//! {{name}}: a natrium mapper. Moves subjects from an old prefix to a new one
//! (`legacy.orders.1` → `v2.orders.1`), leaving every other subject as it is.
//!
//! Deterministic: the result depends only on the subject, so the broker caches it per
//! (account, subject) and calls the plugin once per distinct subject.

use natrium_plugin_sdk::prelude::*;

/// The new subject for `subject`, or `None` to keep it.
fn rename(subject: &str) -> Option<String> {
    subject.strip_prefix("legacy.").map(|rest| format!("v2.{rest}"))
}

#[mapper(deterministic)]
fn map(_account: &str, subject: &str) -> Option<String> {
    rename(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_subjects_move_to_v2() {
        assert_eq!(map("ACME", "legacy.orders.1").as_deref(), Some("v2.orders.1"));
        assert_eq!(map("ACME", "orders.1"), None);
        assert_eq!(map("ACME", "legacy"), None);
    }
}
