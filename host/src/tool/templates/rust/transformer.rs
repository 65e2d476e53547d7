//! {{name}}: a natrium transformer. Stamps every message with the account it was published
//! in (header `Account`) and drops empty messages, saying why.

use natrium_plugin_sdk::prelude::*;

#[transformer]
fn transform(account: &str, mut msg: Message) -> Outcome {
    if msg.payload.is_empty() {
        return Outcome::Drop(format!("empty message on {}", msg.subject));
    }
    if msg.header("Account") == Some(account) {
        return Outcome::Pass; // unchanged: the broker does not copy the message
    }
    debug!(account = account; "stamping {}", msg.subject);
    msg.set_header("Account", account);
    Outcome::Replace(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_the_account() {
        match transform("ACME", Message::new("orders.1", b"hi".to_vec())) {
            Outcome::Replace(m) => {
                assert_eq!(m.header("Account"), Some("ACME"));
                assert_eq!(m.payload, b"hi");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn drops_empty_messages() {
        assert_eq!(
            transform("ACME", Message::new("orders.1", Vec::new())),
            Outcome::Drop("empty message on orders.1".into())
        );
    }
}
