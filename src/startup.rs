//! The one start-up path of `serve`, shared by the binary, the test harness
//! and the benchmark: what runs before the first request is served is the
//! same everywhere.
use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{app::AppState, config::Config, domain::Email, read::mongo::live, write::EventSink};

/// A server that is connected, on a current schema, and bound, but not yet
/// serving.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    worker: bool,
}

impl Application {
    /// Connects both stores, refuses an old schema (or applies it with
    /// `MIGRATE_ON_START`), grants `ADMIN_EMAILS` to existing accounts,
    /// warms the password hasher, creates the read model's indexes (in the
    /// background while MongoDB is down) and binds `BIND_ADDR`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::start(AppState::connect(config).await?).await
    }

    /// As [`build`](Self::build), with a writer that hands every
    /// transaction's events to `sink` instead of the outbox (see
    /// [`crate::write::sink`]): how the benchmark's `bench-server` runs the
    /// comparison write modes on this same start-up path.
    pub async fn build_with_sink(config: Config, sink: Arc<dyn EventSink>) -> anyhow::Result<Self> {
        Self::start(AppState::connect_with_sink(config, sink).await?).await
    }

    async fn start(state: AppState) -> anyhow::Result<Self> {
        crate::app::check_schema(state.sql(), state.config().migrate_on_start).await?;
        grant_admin_emails(&state).await?;
        crate::auth::dummy_hash();
        crate::read::mongo::indexes::ensure_indexes_at_start(state.read_model()).await;
        let addr = state.config().bind_addr;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        Ok(Self {
            state,
            listener,
            worker: true,
        })
    }

    /// Runs no sync worker in this process (`serve --no-worker`, or tests
    /// that drain the outbox step by step).
    pub fn without_worker(mut self) -> Self {
        self.worker = false;
        self
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound port (useful with `BIND_ADDR=…:0`).
    pub fn port(&self) -> std::io::Result<u16> {
        Ok(self.addr()?.port())
    }

    /// Serves the API (with the change stream that carries other instances'
    /// messages to its subscribers) and, unless disabled, runs the sync
    /// worker beside it until `shutdown` resolves. Whichever of the two ends first is logged,
    /// the other is then asked to stop and awaited.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            state,
            listener,
            worker,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "serving GraphQL on /graphql");
        let stop = tokio_util::sync::CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.cancel();
        });
        let mut api = tokio::spawn(crate::http::serve(
            state.clone(),
            listener,
            stop.clone().cancelled_owned(),
        ));
        // Messages committed through other instances, membership changes
        // and the leaderboard tops any worker writes, for this one's
        // subscribers (followed while it has some); they stop with the API.
        let (carried, gone, nudged) = (state.clone(), state.clone(), state.clone());
        let (rooms, all_rooms) = (state.clone(), state.clone());
        let (totals, all_totals) = (state.clone(), state.clone());
        let (tops, all_tops) = (state.clone(), state.clone());
        let routes = vec![
            live::messages(
                move |message| carried.publish_message(&message),
                move |room_id, id, number| gone.publish_deletion(room_id, id, number),
                move || {
                    let state = nudged.clone();
                    tokio::spawn(async move { state.nudge_subscribers().await });
                },
            ),
            live::rooms(
                move |room_id| rooms.members_changed(room_id),
                move || all_rooms.all_members_changed(),
            ),
            live::totals(
                move |key| totals.boards().changed(key),
                move || all_totals.boards().all_changed(),
            ),
            live::boards(
                move |key| tops.boards().changed(key),
                move || all_tops.boards().all_changed(),
            ),
        ];
        tokio::spawn(live::follow(
            state.read_model().clone(),
            routes,
            state.listeners().watch(),
            state.config().websocket.stream_idle(),
            stop.clone(),
        ));
        if !worker {
            tracing::info!("sync worker disabled (--no-worker)");
            let result = api.await;
            stop.cancel();
            let result = result.context("API task panicked")?;
            tracing::info!(?result, "API stopped");
            return result.context("HTTP server failed");
        }
        let settings = state.config().sync.clone();
        let mut sync = tokio::spawn(crate::sync::worker::run(
            state.sync().clone(),
            settings,
            stop.clone().cancelled_owned(),
        ));
        let (api_result, sync_result) = tokio::select! {
            api_result = &mut api => {
                tracing::info!(result = ?api_result, "API stopped");
                stop.cancel();
                (api_result, sync.await)
            }
            sync_result = &mut sync => {
                tracing::info!(result = ?sync_result, "sync worker stopped");
                stop.cancel();
                (api.await, sync_result)
            }
        };
        api_result
            .context("API task panicked")?
            .context("HTTP server failed")?;
        sync_result
            .context("sync worker panicked")?
            .context("sync worker failed")
    }
}

/// `ADMIN_EMAILS`: grants the admin role to the accounts that exist with
/// those addresses. Never at sign-up, where it would go to whoever registers
/// a listed address first.
pub async fn grant_admin_emails(app: &AppState) -> anyhow::Result<()> {
    for raw in app.config().admin_emails.iter().filter(|e| !e.is_empty()) {
        let email = Email::parse(raw).map_err(|e| anyhow::anyhow!("ADMIN_EMAILS: {e}"))?;
        match crate::write::users::set_role(app.writer(), &email, true).await {
            Ok(_) => tracing::info!("ADMIN_EMAILS: admin role granted to a configured account"),
            Err(crate::error::AppError::NotFound(_)) => {
                tracing::info!("ADMIN_EMAILS: a configured address has no account; not granted")
            }
            Err(e) => anyhow::bail!("ADMIN_EMAILS: {}", e.chain()),
        }
    }
    Ok(())
}
