//! The one message shape that travels the message path, borrowed ([`MsgRef`]) or owned
//! ([`Msg`], for messages the server makes itself: replies, events, plugin rewrites).

use bytes::Bytes;

/// A message as it travels the path: slices of the read buffer for client publishes.
#[derive(Debug, Clone, Copy)]
pub struct MsgRef<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// The header block (`NATS/1.0\r\n…\r\n\r\n`) of an HPUB, if any.
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl<'a> MsgRef<'a> {
    pub fn new(subject: &'a [u8], payload: &'a [u8]) -> Self {
        MsgRef {
            subject,
            reply: None,
            headers: None,
            payload,
        }
    }

    /// Header and payload bytes: what nats-server counts as a message's size.
    pub fn size(&self) -> usize {
        self.payload.len() + self.headers.map_or(0, <[u8]>::len)
    }

    /// The same message on another subject (a mapping or an import renamed it).
    pub fn with_subject<'b>(&self, subject: &'b [u8]) -> MsgRef<'b>
    where
        'a: 'b,
    {
        MsgRef { subject, ..*self }
    }

    pub fn to_owned(&self) -> Msg {
        Msg {
            subject: Bytes::copy_from_slice(self.subject),
            reply: self.reply.map(Bytes::copy_from_slice),
            headers: self.headers.map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(self.payload),
        }
    }
}

/// An owned message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Msg {
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

impl Msg {
    /// A reply or event: no reply subject, no headers.
    pub fn new(subject: impl Into<Bytes>, payload: impl Into<Bytes>) -> Self {
        Msg {
            subject: subject.into(),
            payload: payload.into(),
            ..Msg::default()
        }
    }

    pub fn with_headers(mut self, headers: Option<impl Into<Bytes>>) -> Self {
        self.headers = headers.map(Into::into);
        self
    }

    pub fn as_ref(&self) -> MsgRef<'_> {
        MsgRef {
            subject: &self.subject,
            reply: self.reply.as_deref(),
            headers: self.headers.as_deref(),
            payload: &self.payload,
        }
    }
}

impl<'a> super::ClientOp<'a> {
    /// The message a `PUB` or `HPUB` carries; any other operation is handed back.
    pub fn into_msg(self) -> Result<MsgRef<'a>, Self> {
        match self {
            Self::Pub {
                subject,
                reply,
                payload,
            } => Ok(MsgRef {
                subject,
                reply,
                headers: None,
                payload,
            }),
            Self::Hpub {
                subject,
                reply,
                headers,
                payload,
            } => Ok(MsgRef {
                subject,
                reply,
                headers: Some(headers),
                payload,
            }),
            other => Err(other),
        }
    }
}
