//! Reload (SIGHUP, `--signal reload`, `$SYS.REQ.SERVER.<id>.RELOAD`).
//!
//! The new options are built the way the first ones were: the configuration file read again,
//! then the command line applied over it (flags win, always), then validated. Options that
//! need a restart must be unchanged, or the whole reload is refused and the old configuration
//! keeps running. Otherwise the new options replace the old ones as a whole, and what they
//! change reaches live connections: a client whose credentials the new configuration no
//! longer accepts is closed with 'Authorization Violation'; changed permissions apply at once.

use super::{Server, StartError};
use crate::account::{Credentials, UserDirectory};
use crate::client::{Client, CloseReason};
use crate::options::Options;
use crate::path::plugins::PluginSet;
use crate::proto::ServerError;
use std::sync::Arc;

/// Why a reload was refused; the old configuration is still running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no configuration file to reload")]
    NoConfigFile,
    #[error(transparent)]
    Cli(#[from] crate::cli::CliError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Options that need a restart changed (nats-server's wording, one per option).
    #[error("{}", .0.join("; "))]
    NotReloadable(Vec<String>),
    /// The new options fail a check the server makes at start-up (TLS files, users,
    /// imports, mappings, plugins).
    #[error(transparent)]
    Invalid(#[from] StartError),
}

/// The options a running server cannot change: a reload that changes one is refused. Each
/// is reported under its configuration name (nats-server's), not its path in [`Options`].
fn not_reloadable(old: &Options, new: &Options) -> Vec<String> {
    let mut refused = Vec::new();
    macro_rules! fixed {
        ($($name:ident: $($field:ident).+),* $(,)?) => {$(
            let (a, b) = (format!("{:?}", old.$($field).+), format!("{:?}", new.$($field).+));
            if a != b {
                refused.push(format!(
                    "config reload not supported for {}: old={a}, new={b}",
                    stringify!($name)
                ));
            }
        )*};
    }
    fixed!(
        host: listen.host,
        port: listen.port,
        http_host: listen.http_host,
        http_port: listen.http_port,
        server_name: server_name,
        client_advertise: listen.client_advertise,
        pid_file: files.pid_file,
        ports_file_dir: files.ports_file_dir,
        log_file: logging.file,
        logtime: logging.logtime,
        jetstream: jetstream.enabled,
        store_dir: jetstream.store_dir,
        js_max_memory: jetstream.max_memory,
        js_max_storage: jetstream.max_storage,
        js_sync_interval: jetstream.sync_interval,
        js_domain: jetstream.domain,
        js_account_limits: jetstream.account_limits,
        operator: operator.jwts,
        resolver: operator.resolver,
        system_account: accounts.system_account,
        cluster_name: cluster.name,
        cluster_listen: cluster.listen,
        routes: cluster.routes,
        plugin_cache_dir: plugins.cache_dir,
        // As nats-server: the callout decides who is connected; changing it needs a restart.
        auth_callout: auth.callout,
    );
    refused
}

impl Server {
    /// Builds the options again from the sources the running ones came from and applies
    /// them; logs the outcome in nats-server's words.
    pub fn reload_from_sources(&self) -> Result<(), ReloadError> {
        let outcome = self.rebuild_and_reload();
        match &outcome {
            Ok(()) => tracing::info!("Reloaded server configuration"),
            Err(e) => tracing::error!("Failed to reload server configuration: {e}"),
        }
        outcome
    }

    fn rebuild_and_reload(&self) -> Result<(), ReloadError> {
        let current = self.options();
        let new = if !current.command_line.is_empty() {
            match crate::cli::parse(current.command_line.clone())? {
                crate::cli::Command::Run(o) => o,
                _ => return Err(ReloadError::NoConfigFile),
            }
        } else {
            let path = current
                .config_file
                .as_ref()
                .ok_or(ReloadError::NoConfigFile)?;
            let mut o = crate::config::load(path)?;
            crate::config::validate(&o)?;
            o.command_line.clear();
            o
        };
        if new.config_file.is_none() {
            return Err(ReloadError::NoConfigFile);
        }
        self.reload(new)
    }

    /// Applies new options to the running server, or refuses them all.
    pub fn reload(&self, new: Options) -> Result<(), ReloadError> {
        let _one_at_a_time = self.reloading.lock();
        let old = self.options();
        let refused = not_reloadable(&old, &new);
        if !refused.is_empty() {
            return Err(ReloadError::NotReloadable(refused));
        }
        // Build everything that can fail before changing anything.
        let tls = new
            .tls
            .as_ref()
            .map(crate::tls::acceptor)
            .transpose()
            .map_err(StartError::Tls)?;
        let users = UserDirectory::from_options(&new).map_err(StartError::Users)?;
        crate::account::links::check(&new).map_err(StartError::Config)?;
        for m in &new.accounts.mappings {
            crate::account::compile_mapping(m).map_err(StartError::Mappings)?;
        }
        let plugins = {
            let mut engine = self.core().plugin_engine.lock().take();
            let kv = super::kv_source(self.core().jetstream.as_ref());
            let loaded = PluginSet::load(&new, &mut engine, kv);
            *self.core().plugin_engine.lock() = engine;
            loaded.map_err(StartError::Plugins)?
        };

        // Apply.
        for name in &new.accounts.names {
            let limits = new
                .accounts
                .limits
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| *l)
                .unwrap_or_default();
            self.accounts.get_or_create(name).set_limits(&limits);
        }
        if let Err(e) = self.accounts.apply_mappings(&new.accounts.mappings) {
            tracing::error!("mappings: {e}");
        }
        for w in crate::account::links::wire(&self.accounts, &new) {
            tracing::warn!("{w}");
        }
        if new.auth.failure_backoff != old.auth.failure_backoff {
            // Failures counted under other settings (or none) start afresh.
            self.core().auth_backoff.clear();
        }
        let new = Arc::new(new);
        self.core().set_options(new.clone());
        *self.tls.write() = tls;
        self.core().set_user_directory(users);
        self.core().set_plugins(plugins);
        for account in self.accounts.all() {
            // Imports of `$JS.API.>` may have come or gone.
            crate::path::store::attach(self.core(), &account);
        }
        self.refresh_info();
        for plugin in &new.plugins.specs {
            tracing::debug!(
                "plugin '{}' ({}) reloaded",
                plugin.name,
                plugin.path.display()
            );
        }
        self.recheck_clients();
        Ok(())
    }

    /// What the new configuration means for connected clients.
    fn recheck_clients(&self) {
        let directory = self.user_directory();
        for client in self.clients() {
            let meta = client.meta();
            let Some(creds) = meta.creds.as_ref() else {
                continue; // not connected yet: CONNECT will meet the new rules
            };
            if creds.by_plugin || meta.jwt_user.is_some() {
                // Authorizer plugins and operator JWTs decide per connect; neither is
                // re-asked by a reload.
                continue;
            }
            let tls_map = meta.tls_identity.as_deref().filter(|_| {
                self.options()
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.verify_and_map)
            });
            let presented = Credentials {
                tls_map,
                user: creds.user.as_deref(),
                pass: creds.pass.as_deref(),
                token: creds.token.as_deref(),
                nkey: creds.nkey.as_deref(),
                sig: creds.sig.as_deref(),
                nonce: creds.nonce.as_deref(),
                jwt: creds.jwt.as_deref(),
                ip: Some(client.addr.ip()),
            };
            match directory.authenticate(&presented) {
                Ok(outcome) if outcome.account == meta.account => {
                    let now = outcome.permissions.as_ref().map(|p| p.spec().clone());
                    let before = client.granted_permissions().map(|p| p.spec().clone());
                    if now != before {
                        tracing::info!("{} - permissions changed by reload", client.label());
                        crate::path::apply_permissions(self, &client, outcome.permissions);
                    }
                }
                Ok(_) | Err(_) => close_unauthorized(&client),
            }
        }
    }
}

/// A client the new configuration does not accept (or places in another account).
fn close_unauthorized(client: &Arc<Client>) {
    tracing::info!(
        "{} - credentials no longer accepted after reload, closing",
        client.label()
    );
    let mut frame = bytes::BytesMut::new();
    crate::proto::write_err(&mut frame, ServerError::AuthorizationViolation.text());
    client.queue_raw(&frame);
    client.mark_closed(CloseReason::AuthenticationViolation);
}
