//! Subject mapping: the account's `mappings {}` rewrite a published subject before plugins
//! and routing see it (nats-server maps before routing), weighted destinations picked by the
//! publisher's random roll.

use super::session::Session;
use std::borrow::Cow;

impl Session {
    /// The subject `subject` is routed on in this client's account.
    pub(super) fn map_subject<'a>(&mut self, subject: &'a [u8]) -> Cow<'a, [u8]> {
        if self.account.has_mappings() {
            let roll = (self.router.batch.next_rand() % 100) as u8;
            if let Some(mapped) = self.account.map_subject(subject, roll) {
                return Cow::Owned(mapped);
            }
        }
        Cow::Borrowed(subject)
    }
}
