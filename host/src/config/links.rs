//! Exports and imports as configured: which export allows an import, and the start-up check
//! that every import is allowed (nats-server refuses to start otherwise). The wiring of
//! allowed links into live accounts is `account::links`.

use super::ConfigError;
use crate::options::{ExportSpec, ImportSpec, Options};

/// The export that allows `imp`: same account and kind, a subject covering the import's, and
/// either public or naming the importer.
pub fn export_for<'a>(opts: &'a Options, imp: &ImportSpec) -> Option<&'a ExportSpec> {
    opts.accounts.exports.iter().find(|e| {
        e.account == imp.from
            && e.kind == imp.kind
            && crate::auth::permissions::is_subset_match(
                imp.subject.as_bytes(),
                e.subject.as_bytes(),
            )
            && (e.accounts.is_empty() || e.accounts.contains(&imp.account))
    })
}

/// Checks that every configured import is allowed by an export, as nats-server does at
/// start-up (an unauthorized import is a configuration error, with nats-server's text).
pub fn check(opts: &Options) -> Result<(), ConfigError> {
    for imp in &opts.accounts.imports {
        if !opts.accounts.names.contains(&imp.from) {
            return Err(ConfigError::ImportAccountNotFound {
                account: imp.account.clone(),
                kind: imp.kind,
                subject: imp.subject.clone(),
                from: imp.from.clone(),
            });
        }
        if export_for(opts, imp).is_none() {
            return Err(ConfigError::ImportNotAuthorized {
                account: imp.account.clone(),
                kind: imp.kind,
                subject: imp.subject.clone(),
                from: imp.from.clone(),
            });
        }
    }
    Ok(())
}
