//! The engine thread's per-message driver: book → signal → risk → matching,
//! timing each callee at its call site as the ground truth for those stages.

use crate::book::OrderBook;
use crate::feed::{MarketEvent, Message};
use crate::inject::{InjectPlan, Injector};
use crate::matching::{Fill, MatchingEngine, MatchingLimits, Order, Owner, TimeInForce};
use crate::risk::{RiskEngine, RiskLimits};
use crate::signal::{Signal, SignalConfig};
use crate::stage::{Stage, StageStats, StageSummary, StatsError};

/// Our order ids live above every feed order id, so a fill's maker and taker
/// can never be confused.
const OUR_ORDER_ID_BASE: u64 = 1 << 63;
/// Levels the public book keeps per side.
const BOOK_DEPTH: usize = 64;

/// What the engine hands to the gateway thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// An order that passed risk and was submitted to matching.
    Order(Order),
    /// One of our executions.
    Fill(Fill),
}

/// Pipeline counters of the engine thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounts {
    pub book_updates: u64,
    pub signals_fired: u64,
    pub risk_checked: u64,
    pub risk_rejected: u64,
    pub orders_submitted: u64,
    pub fills: u64,
}

/// Call-site latency records for the stages `on_message` calls.
#[derive(Debug, Clone)]
struct CalleeStats {
    book: StageStats,
    signal: StageStats,
    risk_check: StageStats,
    matching: StageStats,
}

#[derive(Debug, Clone)]
pub struct Engine {
    book: OrderBook,
    signal: Signal,
    risk: RiskEngine,
    matching: MatchingEngine,
    stats: CalleeStats,
    counts: EngineCounts,
    next_order_id: u64,
    /// Reused for each submit so the hot path does not allocate.
    fills: Vec<Fill>,
    inject: Injector,
}

impl Engine {
    pub fn new(plan: &InjectPlan) -> Result<Self, StatsError> {
        Ok(Engine {
            book: OrderBook::new(BOOK_DEPTH, plan.injector(Stage::Book)),
            signal: Signal::new(SignalConfig::default(), plan.injector(Stage::Signal)),
            risk: RiskEngine::new(RiskLimits::default(), plan.injector(Stage::RiskCheck)),
            matching: MatchingEngine::new(MatchingLimits::default(), plan.injector(Stage::Matching)),
            stats: CalleeStats {
                book: StageStats::new(Stage::Book)?,
                signal: StageStats::new(Stage::Signal)?,
                risk_check: StageStats::new(Stage::RiskCheck)?,
                matching: StageStats::new(Stage::Matching)?,
            },
            counts: EngineCounts::default(),
            next_order_id: OUR_ORDER_ID_BASE,
            fills: Vec::with_capacity(16),
            inject: plan.injector(Stage::OnMessage),
        })
    }

    /// Stage `on_message`: drives one decoded message through the book and
    /// the signal and, when the signal fires, through risk and matching.
    /// Orders and fills for the gateway are appended to `out`.
    #[inline(never)]
    pub fn on_message(&mut self, msg: &Message, out: &mut Vec<Outbound>) {
        self.inject.fire();
        let event = &msg.event;

        self.stats.book.time(|| self.book.apply(event));
        self.counts.book_updates += 1;

        // The venue sees the same outside order flow as the public book;
        // that is the liquidity our orders can hit.
        match *event {
            MarketEvent::Add { order_id, side, price, qty } => {
                self.matching.add_liquidity(Order {
                    id: order_id,
                    owner: Owner::External,
                    side,
                    price,
                    qty,
                    tif: TimeInForce::GoodTillCancel,
                });
            }
            MarketEvent::Cancel { order_id, .. } => {
                self.matching.cancel(order_id);
            }
            MarketEvent::Trade { .. } => {}
        }

        let intent = self.stats.signal.time(|| self.signal.update(&self.book, event));
        let Some(intent) = intent else { return };
        self.counts.signals_fired += 1;

        let verdict = self.stats.risk_check.time(|| self.risk.check(&intent));
        self.counts.risk_checked += 1;
        if verdict.is_err() {
            self.counts.risk_rejected += 1;
            return;
        }

        let order = Order {
            id: self.next_order_id,
            owner: Owner::Us,
            side: intent.side,
            price: intent.price,
            qty: intent.qty,
            tif: TimeInForce::ImmediateOrCancel,
        };
        self.next_order_id += 1;
        self.fills.clear();
        self.stats.matching.time(|| self.matching.submit(order, &mut self.fills));
        self.counts.orders_submitted += 1;
        out.push(Outbound::Order(order));
        for fill in &self.fills {
            self.risk.on_fill(fill.taker_side, fill.qty);
            self.counts.fills += 1;
            out.push(Outbound::Fill(*fill));
        }
    }

    pub fn counts(&self) -> EngineCounts {
        self.counts
    }

    pub fn position(&self) -> i64 {
        self.risk.position()
    }

    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// Injections into `on_message` itself (its timing lives with the caller).
    pub fn on_message_injected(&self) -> crate::inject::InjectCounts {
        self.inject.counts()
    }

    /// Summaries of the callee stages, in pipeline order.
    pub fn callee_summaries(&self) -> [StageSummary; 4] {
        [
            self.stats.book.summary(self.book.injected()),
            self.stats.signal.summary(self.signal.injected()),
            self.stats.risk_check.summary(self.risk.injected()),
            self.stats.matching.summary(self.matching.injected()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Generator;

    fn run(messages: u64) -> (Engine, Vec<Outbound>) {
        let mut engine = Engine::new(&InjectPlan::default()).expect("engine");
        let mut generator = Generator::new(1);
        let mut out = Vec::new();
        for _ in 0..messages {
            engine.on_message(&generator.next_message(), &mut out);
        }
        (engine, out)
    }

    #[test]
    fn counts_are_consistent_and_every_path_is_taken() {
        let (engine, out) = run(20_000);
        let c = engine.counts();
        assert_eq!(c.book_updates, 20_000);
        assert_eq!(c.risk_checked, c.signals_fired);
        assert_eq!(c.orders_submitted, c.risk_checked - c.risk_rejected);
        assert!(c.risk_rejected > 0, "{c:?}");
        assert!(c.orders_submitted > 100, "{c:?}");
        assert!(c.fills > 100, "{c:?}");
        let orders = out.iter().filter(|o| matches!(o, Outbound::Order(_))).count();
        assert_eq!(orders as u64, c.orders_submitted);
        assert_eq!(out.len() as u64, c.orders_submitted + c.fills);
        assert!(engine.position().abs() <= RiskLimits::default().max_position);
    }

    #[test]
    fn callee_counts_match_the_pipeline_counts() {
        let (engine, _) = run(5_000);
        let c = engine.counts();
        let [book, signal, risk, matching] = engine.callee_summaries();
        assert_eq!(book.latency.count, c.book_updates);
        assert_eq!(signal.latency.count, c.book_updates);
        assert_eq!(risk.latency.count, c.risk_checked);
        assert_eq!(matching.latency.count, c.orders_submitted);
    }

    #[test]
    fn same_seed_same_outcome() {
        let (a, out_a) = run(3_000);
        let (b, out_b) = run(3_000);
        assert_eq!(a.counts(), b.counts());
        assert_eq!(out_a, out_b);
        assert_eq!(a.book().best_bid(), b.book().best_bid());
    }
}
