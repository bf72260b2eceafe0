//! `membersync daemon`: apply every interval with the same guards as `apply` (a refused cycle
//! is reported, never forced), re-reading the files each cycle, and serving health and metrics.
//! With a webhook secret, also `POST /webhooks/clerk`: an event for a managed organization
//! (matched by ID, see `webhook::target`) queues a reconcile of that organization alone, run by
//! a few workers with the client of the latest cycle. Every client of the daemon's lifetime
//! shares one pacer and retry budget (`Clients`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::clerk::Client;
use crate::cli::{ApiArgs, DaemonArgs, FileArgs, OutputFormat};
use crate::daemon::{self, Health, Intake, count_event};
use crate::desired::DesiredState;
use crate::webhook::queue::{Queue, Work};
use crate::webhook::{Event, Replays, WebhookSecret, target};

use super::apply::{apply_desired, apply_organization};
use super::execute::{ApplyOptions, Totals, finish};
use super::{CommandError, CommandResult, Exit, Finished, prepare};

/// Webhook reconciles run at once, at most.
const WORKERS: usize = 4;

/// The daemon's clients: one per cycle, built from the key as it is then (a rotated key file
/// takes effect at the next cycle), all with the pacer and retry budget of the first, so that
/// cycles and webhook reconciles together never exceed `--rate-limit`. Reconciles use the
/// latest.
struct Clients {
    api: ApiArgs,
    shutdown: Arc<AtomicBool>,
    latest: Mutex<Option<Arc<Client>>>,
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Client>>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new client (a cycle's), sharing the pacer and retry budget of the previous one.
    fn renew(&self) -> Result<Arc<Client>, CommandError> {
        let mut latest = self.lock();
        let client = prepare::client_after(&self.api, self.shutdown.clone(), latest.as_deref())?;
        *latest = Some(client.clone());
        Ok(client)
    }

    /// The latest client, or a first one when no cycle has made one yet.
    fn latest(&self) -> Result<Arc<Client>, CommandError> {
        let latest = self.lock().clone();
        match latest {
            Some(client) => Ok(client),
            None => self.renew(),
        }
    }
}

pub async fn run(args: &DaemonArgs) -> CommandResult {
    super::report_structured();
    // Invalid configuration of its own ends the daemon at start (exit 2), before it serves
    // anything: a missing key or a bad --api-url would fail every cycle, an unreadable webhook
    // secret every delivery. The key is read again each cycle (a rotated secret mount).
    prepare::client(&args.api)?;
    crate::telemetry::register_counters(&["daemon", "webhook"]);
    let health = Arc::new(Health::default());
    health.set_ready(false);
    let (server, received) = listen(args, &health).await?;
    let address = server.address();
    let webhooks = received.is_some();
    tracing::info!(%address, interval = ?args.interval, webhooks, "daemon started: /healthz, /readyz, /metrics{}", if webhooks { ", POST /webhooks/clerk" } else { "" });
    let (shutdown, signal) = daemon::shutdown_on_signal();
    let running = Running {
        args,
        options: ApplyOptions {
            output: OutputFormat::Text,
            max_deletes: args.max_deletes,
            force: false,
            show_plan: false,
            quiet: true,
            private: crate::plan::Private::Hidden,
        },
        clients: Arc::new(Clients {
            api: args.api.clone(),
            shutdown: shutdown.clone(),
            latest: Mutex::new(None),
        }),
        shutdown,
    };
    let readiness = Readiness::new(health, args.unready_after);
    tokio::join!(
        running.cycles(readiness, signal.clone()),
        running.webhooks(received, signal)
    );
    server.stop().await;
    tracing::info!("daemon stopped");
    Ok(Finished::Done)
}

/// What the cycles and the webhook side share while the daemon runs.
struct Running<'a> {
    args: &'a DaemonArgs,
    options: ApplyOptions,
    clients: Arc<Clients>,
    /// Set by SIGTERM/SIGINT: no new request starts.
    shutdown: Arc<AtomicBool>,
}

impl Running<'_> {
    /// Applies every interval until shutdown; each cycle's end sets the readiness.
    async fn cycles(&self, readiness: Readiness, signal: watch::Receiver<bool>) {
        let readiness = &readiness;
        daemon::run_loop(self.args.interval, signal, || {
            let span = tracing::info_span!("cycle", cycle_id = %super::new_run_id());
            async move {
                let started = Instant::now();
                let mut totals = Totals::default();
                let result =
                    cycle(&self.args.files, self.options, &self.clients, &mut totals).await;
                let exit = Exit::of(&result);
                if let Err(error) = &result {
                    super::report(error);
                }
                readiness.cycle_ended(exit, totals.reached_clerk);
                finish("daemon", exit, started, &totals);
            }
            .instrument(span)
        })
        .await;
    }

    /// With a webhook secret: matches each verified event to an organization and runs its
    /// reconcile on a few workers, until shutdown.
    async fn webhooks(
        &self,
        received: Option<mpsc::UnboundedReceiver<Event>>,
        signal: watch::Receiver<bool>,
    ) {
        let Some(received) = received else {
            return;
        };
        let queue = Arc::new(Queue::default());
        let workers: Vec<Worker> = (0..WORKERS)
            .map(|_| Worker {
                files: self.args.files.clone(),
                options: self.options,
                queue: queue.clone(),
                clients: self.clients.clone(),
                shutdown: self.shutdown.clone(),
            })
            .collect();
        let dispatch = dispatcher(
            received,
            self.args.files.clone(),
            queue.clone(),
            self.clients.clone(),
            signal.clone(),
        );
        let running = futures::future::join_all(workers.iter().map(|w| w.run(signal.clone())));
        tokio::join!(dispatch, running);
    }
}

/// Serves health and metrics on `--listen`, and webhooks with a secret: then with the
/// receiver of the verified events.
async fn listen(
    args: &DaemonArgs,
    health: &Arc<Health>,
) -> Result<(daemon::Server, Option<mpsc::UnboundedReceiver<Event>>), CommandError> {
    let secret = WebhookSecret::from_env_or_file(args.webhook_secret_file.as_deref())
        .map_err(|error| CommandError::invalid(error.to_string()))?;
    let (events, received) = mpsc::unbounded_channel();
    let intake = secret.map(|secret| {
        Arc::new(Intake {
            secret,
            replays: Mutex::new(Replays::default()),
            events,
        })
    });
    let received = intake.is_some().then_some(received);
    let server = daemon::serve(
        args.listen,
        health.clone(),
        intake,
        daemon::Limits::default(),
    )
    .await
    .map_err(|error| CommandError::failure(format!("cannot listen on {}: {error}", args.listen)))?;
    Ok((server, received))
}

/// Readiness from the cycles: ready once a cycle reaches Clerk and completes; not ready after
/// `--unready-after` failed cycles in a row (a cycle skipped for invalid files changes nothing).
struct Readiness {
    health: Arc<Health>,
    unready_after: u32,
    failed: AtomicU32,
}

impl Readiness {
    fn new(health: Arc<Health>, unready_after: u32) -> Readiness {
        Readiness {
            health,
            unready_after,
            failed: AtomicU32::new(0),
        }
    }

    fn cycle_ended(&self, exit: Exit, reached_clerk: bool) {
        if exit == Exit::Invalid {
            // The files did not parse: the cycle is skipped; readiness is unchanged.
            tracing::error!(
                "invalid input (see above); this cycle is skipped, nothing was written"
            );
            return;
        }
        if reached_clerk {
            self.failed.store(0, Ordering::SeqCst);
            self.health.set_ready(true);
            return;
        }
        let failed = self.failed.fetch_add(1, Ordering::SeqCst) + 1;
        if failed >= self.unready_after {
            self.health.set_ready(false);
        } else {
            tracing::warn!(
                failed,
                unready_after = self.unready_after,
                "the cycle failed; /readyz stays ready until {} cycles in a row fail",
                self.unready_after
            );
        }
    }
}

/// One interval cycle, with a new client (the key file is read again) that the webhook
/// reconciles then use too.
async fn cycle(
    files: &FileArgs,
    options: ApplyOptions,
    clients: &Clients,
    totals: &mut Totals,
) -> CommandResult {
    let desired = prepare::load(files)?;
    let client = clients.renew()?;
    apply_desired(client, desired, &Default::default(), options, totals).await
}

/// Decides what each verified event asks for: a reconcile of a managed organization, or
/// nothing (an organization or an event type the files do not care about: no request).
async fn dispatcher(
    mut received: mpsc::UnboundedReceiver<Event>,
    files: FileArgs,
    queue: Arc<Queue>,
    clients: Arc<Clients>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The files as last read: a burst of events reads them once a second at most.
    let mut loaded: Option<(Instant, DesiredState)> = None;
    loop {
        let event = tokio::select! {
            event = received.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = shutdown.changed() => return,
        };
        if loaded
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > std::time::Duration::from_secs(1))
        {
            loaded = crate::desired::load(&files.files)
                .ok()
                .map(|desired| (Instant::now(), desired));
        }
        let Some((_, desired)) = &loaded else {
            tracing::warn!(kind = %event.kind, "the desired state does not load; the event waits for the next cycle");
            count_event(&event.kind, "ignored");
            continue;
        };
        let client = match clients.latest() {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(kind = %event.kind, error = %error.errors.join("; "), "no client to match the event with; it waits for the next cycle");
                count_event(&event.kind, "ignored");
                continue;
            }
        };
        target::learn(&client, &event);
        match target::target(&client, desired, &event).await {
            Ok(Some(target)) => {
                tracing::info!(kind = %event.kind, organization = %target.id, "webhook: reconciling the organization");
                count_event(&event.kind, "reconciled");
                queue.push(&target.id, target.slug);
            }
            Ok(None) => {
                tracing::debug!(kind = %event.kind, organization = ?event.organization_id, "webhook: not managed here; ignored");
                count_event(&event.kind, "ignored");
            }
            Err(error) => {
                tracing::warn!(kind = %event.kind, %error, "cannot tell whether the files manage the event's organization; the next cycle covers it");
                count_event(&event.kind, "ignored");
            }
        }
    }
}

/// Runs queued reconciles.
struct Worker {
    files: FileArgs,
    options: ApplyOptions,
    queue: Arc<Queue>,
    clients: Arc<Clients>,
    shutdown: Arc<AtomicBool>,
}

impl Worker {
    async fn run(&self, mut signal: watch::Receiver<bool>) {
        loop {
            let work = tokio::select! {
                work = self.queue.next() => work,
                _ = signal.changed() => return,
            };
            if self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            let span = tracing::info_span!("webhook", run_id = %super::new_run_id());
            self.reconcile(&work).instrument(span).await;
            self.queue.done(&work);
        }
    }

    async fn reconcile(&self, work: &Work) {
        let started = Instant::now();
        let mut totals = Totals::default();
        let result = match work {
            Work::Everything => self.everything(&mut totals).await,
            Work::Organization { id, slug } => {
                self.organization(id, slug.as_deref(), &mut totals).await
            }
        };
        if let Err(error) = &result {
            super::report(error);
        }
        finish("webhook", Exit::of(&result), started, &totals);
    }

    async fn organization(
        &self,
        id: &str,
        slug: Option<&str>,
        totals: &mut Totals,
    ) -> CommandResult {
        let desired = prepare::load(&self.files)?;
        let client = self.clients.latest()?;
        apply_organization(client, desired, (id, slug), self.options, totals).await
    }

    /// One full cycle, when too many organizations wait.
    async fn everything(&self, totals: &mut Totals) -> CommandResult {
        let desired = prepare::load(&self.files)?;
        let client = self.clients.latest()?;
        apply_desired(client, desired, &Default::default(), self.options, totals).await
    }
}
