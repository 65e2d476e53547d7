//! The consumers of one account: creation with nats-server's create-or-update rules,
//! deletion, recovery of durable consumers from a file stream's `obs/` directory.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::config::ConsumerConfig;
use super::Consumer;
use crate::jetstream::config::{subjects_overlap, Retention, Storage};
use crate::jetstream::errors::ApiError;
use crate::jetstream::stream::Stream;
use crate::jetstream::JsAccount;

/// `action` of a create request (nats-server 2.10): create only, update only, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateOrUpdate,
    Create,
    Update,
}

impl JsAccount {
    pub fn consumer(&self, stream: &str, name: &str) -> Option<Arc<Consumer>> {
        self.consumers
            .read()
            .get(&(stream.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The consumers of `stream`, by name.
    pub fn consumers_of(&self, stream: &str) -> Vec<Arc<Consumer>> {
        self.consumers
            .read()
            .range((stream.to_owned(), String::new())..)
            .take_while(|((s, _), _)| s == stream)
            .map(|(_, c)| c.clone())
            .collect()
    }

    pub fn all_consumers(&self) -> Vec<Arc<Consumer>> {
        self.consumers.read().values().cloned().collect()
    }

    pub fn num_consumers(&self) -> usize {
        self.consumers.read().len()
    }

    /// Changes whenever a consumer is added or removed.
    pub fn consumers_generation(&self) -> u64 {
        self.consumers_gen.load(Ordering::Acquire)
    }

    /// Creates (or updates) a consumer of `stream` with a normalized `config`.
    /// Returns the consumer and whether it is new.
    pub fn add_consumer(
        &self,
        stream: &Arc<Stream>,
        config: ConsumerConfig,
        action: Action,
        now: i64,
    ) -> Result<(Arc<Consumer>, bool), ApiError> {
        let added = self.add_or_update(stream, config, action, now);
        if added.is_ok() {
            self.refresh_interest(stream);
        }
        added
    }

    /// Tells `stream` which consumers (and filters) hold interest in its messages.
    fn refresh_interest(&self, stream: &Stream) {
        let holders = self
            .consumers_of(&stream.name)
            .into_iter()
            .map(|c| {
                let weak: std::sync::Weak<dyn crate::jetstream::stream::Interest> =
                    Arc::downgrade(&c) as _;
                (c.config().filters(), weak)
            })
            .collect();
        stream.set_interest(holders);
    }

    /// A work queue gives each message to one consumer: one unfiltered consumer, or
    /// consumers with disjoint filters, all delivering everything (nats-server's rules).
    fn check_work_queue(
        stream: &Stream,
        existing: &[Arc<Consumer>],
        config: &ConsumerConfig,
    ) -> Result<(), ApiError> {
        if stream.config().retention != Retention::WorkQueue {
            return Ok(());
        }
        let filters = config.filters();
        if !existing.is_empty() {
            if filters.is_empty() {
                return Err(ApiError::consumer_wq_multiple_unfiltered());
            }
            let overlaps = existing.iter().any(|c| {
                let theirs = c.config().filters();
                theirs.is_empty()
                    || theirs
                        .iter()
                        .any(|t| filters.iter().any(|f| subjects_overlap(t, f)))
            });
            if overlaps {
                return Err(ApiError::consumer_wq_not_unique());
            }
        }
        if config.deliver_policy != super::config::DeliverPolicy::All {
            return Err(ApiError::consumer_wq_not_deliver_all());
        }
        Ok(())
    }

    fn add_or_update(
        &self,
        stream: &Arc<Stream>,
        config: ConsumerConfig,
        action: Action,
        now: i64,
    ) -> Result<(Arc<Consumer>, bool), ApiError> {
        let name = if config.is_durable() {
            config.durable_name.clone()
        } else if !config.name.is_empty() {
            config.name.clone()
        } else {
            String::new()
        };
        let mut consumers = self.consumers.write();
        if !name.is_empty() {
            if let Some(existing) = consumers.get(&(stream.name.clone(), name.clone())) {
                let old = existing.config();
                if old == config {
                    return Ok((existing.clone(), false));
                }
                if action == Action::Create {
                    return Err(ApiError::consumer_already_exists());
                }
                old.check_update(&config)?;
                existing.update(config)?;
                return Ok((existing.clone(), false));
            }
        }
        if action == Action::Update {
            return Err(ApiError::consumer_does_not_exist());
        }
        let existing: Vec<Arc<Consumer>> = consumers
            .range((stream.name.clone(), String::new())..)
            .take_while(|((s, _), _)| *s == stream.name)
            .map(|(_, c)| c.clone())
            .collect();
        Self::check_work_queue(stream, &existing, &config)?;
        let stream_max = stream.config().max_consumers;
        let account_max = self.limits().max_consumers;
        let count = stream.consumer_count.load(Ordering::Relaxed) as i64;
        if (stream_max > 0 && count >= stream_max)
            || (account_max > 0 && consumers.len() as i64 >= account_max)
        {
            return Err(ApiError::max_consumers());
        }
        let name = if name.is_empty() {
            loop {
                let n = crate::util::random_base32(8, true);
                if !consumers.contains_key(&(stream.name.clone(), n.clone())) {
                    break n;
                }
            }
        } else {
            name
        };
        let mut config = config;
        if !config.is_durable() && config.name.is_empty() {
            config.name = name.clone();
        }
        let persisted =
            config.is_durable() && !config.mem_storage && stream.config().storage == Storage::File;
        let dir = stream
            .dir
            .as_ref()
            .filter(|_| persisted)
            .map(|d| d.join("obs").join(&name));
        let c = Consumer::create(name.clone(), stream.clone(), config, dir, now)?;
        consumers.insert((stream.name.clone(), name), c.clone());
        stream.consumer_count.fetch_add(1, Ordering::Relaxed);
        self.consumers_gen.fetch_add(1, Ordering::AcqRel);
        Ok((c, true))
    }

    /// `CONSUMER.DELETE` (and inactivity): forgets the consumer and removes its state.
    pub fn delete_consumer(&self, stream: &str, name: &str) -> Result<Arc<Consumer>, ApiError> {
        let c = self
            .consumers
            .write()
            .remove(&(stream.to_owned(), name.to_owned()))
            .ok_or_else(ApiError::consumer_not_found)?;
        c.stream.consumer_count.fetch_sub(1, Ordering::Relaxed);
        c.close(true);
        self.consumers_gen.fetch_add(1, Ordering::AcqRel);
        self.refresh_interest(&c.stream);
        c.stream.retire_unwanted();
        Ok(c)
    }

    /// Forgets every consumer of a stream being deleted (its directory goes with the stream's).
    pub(crate) fn drop_consumers_of(&self, stream: &str) {
        let gone: Vec<Arc<Consumer>> = {
            let mut consumers = self.consumers.write();
            let keys: Vec<(String, String)> = consumers
                .range((stream.to_owned(), String::new())..)
                .take_while(|((s, _), _)| s == stream)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| consumers.remove(k)).collect()
        };
        for c in &gone {
            c.close(false);
        }
        if !gone.is_empty() {
            self.consumers_gen.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Restores the durable consumers kept in `<stream dir>/obs`.
    pub(crate) fn recover_consumers(&self, stream: &Arc<Stream>, now: i64) {
        let Some(dir) = &stream.dir else { return };
        let Ok(entries) = std::fs::read_dir(dir.join("obs")) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            match Consumer::recover(stream.clone(), path.clone(), now) {
                Ok((c, _)) => {
                    tracing::info!(
                        "  Restored consumer '{} > {} > {}'",
                        self.name,
                        stream.name,
                        c.name
                    );
                    self.consumers
                        .write()
                        .insert((stream.name.clone(), c.name.clone()), c);
                    stream.consumer_count.fetch_add(1, Ordering::Relaxed);
                    self.consumers_gen.fetch_add(1, Ordering::AcqRel);
                    self.refresh_interest(stream);
                }
                Err(e) => tracing::error!(
                    "JetStream: could not restore the consumer in {}: {e}",
                    path.display()
                ),
            }
        }
    }
}
