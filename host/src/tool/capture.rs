//! The plugin's log lines during `natrium plugin run`: the sandbox writes a guest's `host.log`
//! calls and its stdout/stderr to `tracing` (target `natrium::plugin`, with a `fields` or
//! `stream` field); this layer keeps those events so each call's report can show them.

use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One line the guest logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LogLine {
    /// `trace` … `error`.
    pub level: String,
    pub message: String,
    /// The guest's key=value fields, or `stream=stdout|stderr`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fields: String,
}

/// Collects guest log lines until [`Captured::take`].
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<LogLine>>>);

impl Captured {
    /// Installs the collector as the process's subscriber (once; later calls keep the first).
    pub fn install() -> Captured {
        use tracing_subscriber::layer::SubscriberExt;
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(captured.clone());
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    }

    /// The lines logged since the last take.
    pub fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.0.lock())
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: String,
    stream: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "fields" => self.fields = value.to_string(),
            "stream" => self.stream = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "natrium::plugin" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        // The sandbox's own lines (failures, cache warnings) have neither field: the report
        // shows failures itself.
        let fields = match (f.stream, event.fields().any(|x| x.name() == "fields")) {
            (Some(stream), _) => format!("stream={stream}"),
            (None, true) => f.fields,
            (None, false) => return,
        };
        self.0.lock().push(LogLine {
            level: event.metadata().level().as_str().to_ascii_lowercase(),
            message: f.message,
            fields,
        });
    }
}
