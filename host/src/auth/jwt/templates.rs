//! Permission templates of scoped signing keys: `{{name()}}`, `{{tag(k)}}` and the like in
//! a template's subjects, expanded from the user's and the account's claims.

use super::{AccountClaims, JwtError, UserClaims, UserPermissionLimits};

/// Expands `{{name()}}`, `{{subject()}}`, `{{account-name()}}`,
/// `{{account-subject()}}`, `{{tag(k)}}`, `{{account-tag(k)}}` in the
/// template's subjects (nats-server `processUserPermissionsTemplate`). A tag
/// with several values yields several subjects; a missing tag fails an
/// allow entry and drops a deny entry.
pub fn process_template(
    template: &UserPermissionLimits,
    user: &UserClaims,
    account: &AccountClaims,
) -> Result<UserPermissionLimits, JwtError> {
    let mut out = template.clone();
    let ctx = TemplateCtx { user, account };
    let p = &mut out.permissions;
    for (list, fail) in [
        (&mut p.publish.allow, true),
        (&mut p.publish.deny, false),
        (&mut p.subscribe.allow, true),
        (&mut p.subscribe.deny, false),
    ] {
        let mut expanded = Vec::with_capacity(list.len());
        for entry in list.iter() {
            match ctx.expand(entry) {
                Ok(v) => expanded.extend(v),
                Err(e) if fail => return Err(e),
                Err(_) => {}
            }
        }
        *list = expanded;
    }
    Ok(out)
}

struct TemplateCtx<'a> {
    user: &'a UserClaims,
    account: &'a AccountClaims,
}

fn tag_values(tags: &[String], key: &str) -> Vec<String> {
    let key = key.to_ascii_lowercase();
    tags.iter()
        .filter_map(|t| t.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(&key))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

impl TemplateCtx<'_> {
    fn eval(&self, expr: &str) -> Result<Vec<String>, JwtError> {
        let expr = expr.trim();
        let (func, arg) = expr
            .strip_suffix(')')
            .and_then(|e| e.split_once('('))
            .ok_or_else(|| JwtError::Template(format!("bad template {expr:?}")))?;
        let arg = arg.trim().trim_matches(|c| c == '"' || c == '\'');
        let vals = match func.trim() {
            "name" => vec![self.user.claims.name.clone()],
            "subject" => vec![self.user.claims.sub.clone()],
            "account-name" => vec![self.account.claims.name.clone()],
            "account-subject" => vec![self.account.claims.sub.clone()],
            "tag" => tag_values(&self.user.nats.generic.tags, arg),
            "account-tag" => tag_values(&self.account.nats.generic.tags, arg),
            other => return Err(JwtError::Template(format!("unknown function {other:?}"))),
        };
        let vals: Vec<String> = vals.into_iter().filter(|v| !v.is_empty()).collect();
        if vals.is_empty() {
            return Err(JwtError::Template(format!("{expr:?} has no value")));
        }
        Ok(vals)
    }

    fn expand(&self, entry: &str) -> Result<Vec<String>, JwtError> {
        let mut results = vec![String::new()];
        let mut rest = entry;
        while let Some(start) = rest.find("{{") {
            let end = rest[start..]
                .find("}}")
                .map(|e| start + e)
                .ok_or_else(|| JwtError::Template(format!("unclosed template in {entry:?}")))?;
            let lit = &rest[..start];
            let vals = self.eval(&rest[start + 2..end])?;
            results = results
                .iter()
                .flat_map(|r| vals.iter().map(move |v| format!("{r}{lit}{v}")))
                .collect();
            rest = &rest[end + 2..];
        }
        for r in &mut results {
            r.push_str(rest);
        }
        Ok(results)
    }
}
