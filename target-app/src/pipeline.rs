//! The three pipeline threads (feed → engine → gateway) and the markers that
//! flow through them to take consistent truth snapshots without locks.
//!
//! A snapshot is a marker the feed puts into the data stream: each thread adds
//! its own counts and latency summaries when the marker reaches it, then
//! passes it on, so the report covers exactly the messages fed before it.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::cli::Config;
use crate::engine::{Engine, Outbound};
use crate::feed::{self, Frame, Generator};
use crate::gateway::{self, Drained, Gateway};
use crate::inject::InjectPlan;
use crate::journal::Journal;
use crate::stage::{Stage, StageStats};
use crate::tick::{self, OrderTicket, Tick, TickStats};
use crate::truth::{EngineReport, FeedReport, GatewayReport, Report, Start};

/// Batches in flight between feed and engine; beyond it the feed blocks,
/// which shows up as a lower achieved rate rather than unbounded memory.
const FEED_QUEUE_BATCHES: usize = 1024;
/// Outbound orders and fills in flight between engine and gateway.
const GATEWAY_QUEUE: usize = 16 * 1024;
/// Shortest pacing sleep: at high rates the feed sends ~1 ms of messages per
/// wake-up instead of sleeping between single messages.
const MIN_TICK: Duration = Duration::from_millis(1);
/// Largest batch, so one catch-up after a stall is not one giant message.
const MAX_BATCH: u64 = 16 * 1024;

/// Commands from the main thread to the feed thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedControl {
    /// Start feeding (sent at once, or on SIGUSR2 with `--hold`).
    Release,
    /// Put a snapshot marker into the pipeline.
    Snapshot,
    /// Stop feeding and put the final marker into the pipeline.
    Stop,
}

/// What the main thread waits for.
#[derive(Debug)]
pub enum Event {
    Signal(i32),
    /// A marker came out of the end of the pipeline.
    Report {
        is_final: bool,
        report: Box<Report>,
    },
    /// A pipeline thread stopped on an error; the run cannot complete.
    Failed {
        thread: &'static str,
        error: anyhow::Error,
    },
}

#[derive(Debug)]
struct Marker {
    is_final: bool,
    report: Box<Report>,
}

/// A message as the feed received it: its frame and when (the start of its tick-to-trade).
struct Arrival {
    frame: Frame,
    received_ns: u64,
}

enum EngineInput {
    Batch(Vec<Arrival>),
    Marker(Marker),
}

enum GatewayInput {
    /// An order carries the tick that caused it; a fill none.
    Out(Outbound, Option<Tick>),
    Marker(Marker),
}

/// The running pipeline, as seen by the main thread.
#[derive(Debug)]
pub struct Pipeline {
    feed_control: Sender<FeedControl>,
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Creates the journal and the gateway socket and starts every thread.
    /// Nothing is fed until `release`.
    pub fn start(config: &Config, events: &Sender<Event>) -> anyhow::Result<Pipeline> {
        let plan = &config.inject;
        let journal = Journal::create(config.journal.path(), plan.injector(Stage::Journal))?;
        let (gateway, exchange_end) = Gateway::with_socket_pair(plan.injector(Stage::Gateway))?;

        let (control_tx, control_rx) = mpsc::channel();
        let (data_tx, data_rx) = mpsc::sync_channel(FEED_QUEUE_BATCHES);
        let (out_tx, out_rx) = mpsc::sync_channel(GATEWAY_QUEUE);

        let mut threads = Vec::new();
        let drain = thread::Builder::new()
            .name("gateway-drain".into())
            .spawn(move || gateway::drain(exchange_end))
            .context("cannot spawn the gateway-drain thread")?;

        let gateway_stage = GatewayStage { gateway, journal, drain };
        let events_for_gateway = events.clone();
        threads.push(spawn_reporting("gateway", events, move || gateway_stage.run(&out_rx, &events_for_gateway))?);

        let engine_plan = plan.clone();
        threads.push(spawn_reporting("engine", events, move || run_engine(&engine_plan, &data_rx, &out_tx))?);

        let feed = FeedConfig { rate: config.rate, seed: config.seed, messages: config.messages };
        threads.push(spawn_reporting("feed", events, move || feed.run(&control_rx, &data_tx))?);

        Ok(Pipeline { feed_control: control_tx, threads })
    }

    // The feed thread may already have finished (after `--messages N`); a
    // command it can no longer receive has nothing left to do.
    pub fn release(&self) {
        let _ = self.feed_control.send(FeedControl::Release);
    }

    pub fn snapshot(&self) {
        let _ = self.feed_control.send(FeedControl::Snapshot);
    }

    pub fn stop(&self) {
        let _ = self.feed_control.send(FeedControl::Stop);
    }

    /// Waits for every pipeline thread; call after the final report.
    pub fn join(self) {
        for handle in self.threads {
            // A thread that failed has already sent Event::Failed.
            let _ = handle.join();
        }
    }
}

/// Spawns a named thread whose error, if any, is reported as an event.
fn spawn_reporting(
    name: &'static str,
    events: &Sender<Event>,
    body: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<JoinHandle<()>> {
    let events = events.clone();
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Err(error) = body() {
                let _ = events.send(Event::Failed { thread: name, error });
            }
        })
        .with_context(|| format!("cannot spawn the {name} thread"))
}

struct FeedConfig {
    rate: u64,
    seed: u64,
    messages: Option<u64>,
}

impl FeedConfig {
    fn run(self, control: &Receiver<FeedControl>, data: &SyncSender<EngineInput>) -> anyhow::Result<()> {
        let mut report = FeedReport::default();
        let send_marker = |report: &FeedReport, is_final: bool| {
            let marker = Marker { is_final, report: Box::new(Report { feed: *report, ..Report::default() }) };
            data.send(EngineInput::Marker(marker)).map_err(|_| anyhow!("the engine thread is gone"))
        };

        // Held: nothing is fed, but snapshots and stops still work.
        loop {
            match control.recv() {
                Ok(FeedControl::Release) => break,
                Ok(FeedControl::Snapshot) => send_marker(&report, false)?,
                Ok(FeedControl::Stop) | Err(_) => return send_marker(&report, true),
            }
        }

        let mut generator = Generator::new(self.seed);
        let limit = self.messages.unwrap_or(u64::MAX);
        let rate = self.rate as f64;
        let start = Start::now();
        report.started = Some(start);
        loop {
            // Message k (0-based) is due at k / rate, so the first goes out
            // at once and the count stays exact however late we wake.
            let elapsed = start.at.elapsed().as_secs_f64();
            let due = ((elapsed * rate) as u64).saturating_add(1).min(limit);
            let batch_len = due.saturating_sub(report.messages_fed).min(MAX_BATCH);
            if batch_len > 0 {
                let batch: Vec<Arrival> = (0..batch_len)
                    .map(|_| {
                        let msg = generator.next_message();
                        Arrival { received_ns: tick::feed_receive(msg.seq), frame: feed::encode(&msg) }
                    })
                    .collect();
                data.send(EngineInput::Batch(batch)).map_err(|_| anyhow!("the engine thread is gone"))?;
                report.messages_fed += batch_len;
            }
            if report.messages_fed >= limit {
                report.stopped_at = Some(Instant::now());
                return send_marker(&report, true);
            }
            let next_due = start.at + Duration::from_secs_f64(report.messages_fed as f64 / rate);
            let now = Instant::now();
            let wait = if next_due <= now { Duration::ZERO } else { (next_due - now).max(MIN_TICK) };
            match control.recv_timeout(wait) {
                Ok(FeedControl::Snapshot) => send_marker(&report, false)?,
                Ok(FeedControl::Release) | Err(RecvTimeoutError::Timeout) => {}
                Ok(FeedControl::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    report.stopped_at = Some(Instant::now());
                    return send_marker(&report, true);
                }
            }
        }
    }
}

/// The engine thread: times `decode` and `on_message` at their call sites.
fn run_engine(plan: &InjectPlan, data: &Receiver<EngineInput>, out: &SyncSender<GatewayInput>) -> anyhow::Result<()> {
    let mut engine = Engine::new(plan)?;
    let mut decode_stats = StageStats::new(Stage::Decode)?;
    let mut on_message_stats = StageStats::new(Stage::OnMessage)?;
    let mut decode_inject = plan.injector(Stage::Decode);
    let mut decoded = 0u64;
    let mut decode_errors = 0u64;
    let mut panics_caught = 0u64;
    let mut outbound = Vec::with_capacity(64);
    let gone = |_| anyhow!("the gateway thread is gone");
    loop {
        let input = data.recv().map_err(|_| anyhow!("the feed thread stopped without a final marker"))?;
        match input {
            EngineInput::Batch(frames) => {
                for arrival in &frames {
                    let decoded_msg = decode_stats.time(|| feed::decode(arrival.frame.as_bytes(), &mut decode_inject));
                    let Ok(msg) = decoded_msg else {
                        decode_errors += 1;
                        continue;
                    };
                    decoded += 1;
                    // Unwinding from a stage stops here (panic=unwind builds); the message is dropped.
                    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        on_message_stats.time(|| engine.on_message(&msg, &mut outbound))
                    }));
                    if handled.is_err() {
                        panics_caught += 1;
                        outbound.clear();
                    }
                    for o in outbound.drain(..) {
                        let tick = matches!(o, Outbound::Order(_))
                            .then_some(Tick { seq: msg.seq, received_ns: arrival.received_ns });
                        out.send(GatewayInput::Out(o, tick)).map_err(gone)?;
                    }
                }
            }
            EngineInput::Marker(mut marker) => {
                let mut stages = vec![decode_stats.summary(decode_inject.counts())];
                stages.extend(engine.callee_summaries());
                stages.push(on_message_stats.summary(engine.on_message_injected()));
                marker.report.engine =
                    EngineReport { decoded, decode_errors, panics_caught, counts: engine.counts(), stages };
                let is_final = marker.is_final;
                out.send(GatewayInput::Marker(marker)).map_err(gone)?;
                if is_final {
                    return Ok(());
                }
            }
        }
    }
}

struct GatewayStage {
    gateway: Gateway,
    journal: Journal,
    drain: JoinHandle<std::io::Result<Drained>>,
}

impl GatewayStage {
    /// The gateway thread: sends and journals every order and fill, timing
    /// both at their call sites.
    fn run(mut self, input: &Receiver<GatewayInput>, events: &Sender<Event>) -> anyhow::Result<()> {
        let mut send_stats = StageStats::new(Stage::Gateway)?;
        let mut journal_stats = StageStats::new(Stage::Journal)?;
        let mut tick_stats = TickStats::new().context("cannot create the tick-to-trade histogram")?;
        let (mut orders, mut fills, mut journaled) = (0u64, 0u64, 0u64);
        loop {
            let msg = input.recv().map_err(|_| anyhow!("the engine thread stopped without a final marker"))?;
            match msg {
                GatewayInput::Out(o, tick) => {
                    send_stats.time(|| self.gateway.send(&o))?;
                    if let (Outbound::Order(order), Some(t)) = (&o, tick) {
                        let sent_ns = tick::order_sent(&OrderTicket { order_id: order.id, md_seq: t.seq });
                        tick_stats.record(sent_ns.saturating_sub(t.received_ns));
                    }
                    match o {
                        Outbound::Order(_) => orders += 1,
                        Outbound::Fill(_) => fills += 1,
                    }
                    journal_stats.time(|| self.journal.append(&o))?;
                    journaled += 1;
                }
                GatewayInput::Marker(mut marker) => {
                    marker.report.gateway = GatewayReport {
                        gateway_sent: send_stats.count(),
                        journaled,
                        orders,
                        fills,
                        tick_to_trade: tick_stats.summary(),
                        stages: vec![
                            send_stats.summary(self.gateway.injected()),
                            journal_stats.summary(self.journal.injected()),
                        ],
                    };
                    if !marker.is_final {
                        let _ = events.send(Event::Report { is_final: false, report: marker.report });
                        continue;
                    }
                    self.journal.flush()?;
                    // Closing our end lets the drain see EOF; its tally
                    // cross-checks that every send reached the other side.
                    drop(self.gateway);
                    let drained = self
                        .drain
                        .join()
                        .map_err(|_| anyhow!("the gateway-drain thread panicked"))?
                        .context("gateway-drain failed")?;
                    if (drained.orders, drained.fills) != (orders, fills) {
                        bail!(
                            "gateway sent {orders} orders and {fills} fills, \
                             but the drain read {} and {}",
                            drained.orders,
                            drained.fills
                        );
                    }
                    let _ = events.send(Event::Report { is_final: true, report: marker.report });
                    return Ok(());
                }
            }
        }
    }
}
