//! A price-time priority matching engine: limit orders match against the
//! best opposite levels first, oldest order first, and any rest is queued.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::inject::Injector;
use crate::types::{Price, Qty, Side};

pub type OrderId = u64;

/// Who an order belongs to: the strategy's own orders are `Us`; resting
/// liquidity mirrored from the feed belongs to other participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Us,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInForce {
    /// Rest whatever does not match.
    GoodTillCancel,
    /// Cancel whatever does not match.
    ImmediateOrCancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub owner: Owner,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub tif: TimeInForce,
}

/// One execution between an incoming (taker) and a resting (maker) order, at
/// the maker's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub taker_id: OrderId,
    pub maker_id: OrderId,
    pub maker_owner: Owner,
    pub taker_side: Side,
    pub price: Price,
    pub qty: Qty,
}

/// Where the quantity of one submitted order went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub filled: Qty,
    pub rested: Qty,
    pub cancelled: Qty,
}

#[derive(Debug, Clone, Copy)]
struct Resting {
    id: OrderId,
    owner: Owner,
    qty: Qty,
}

#[derive(Debug, Clone, Copy)]
pub struct MatchingLimits {
    /// Price levels per side; the level furthest from the touch is dropped
    /// beyond it so memory stays bounded as the market walks away.
    pub max_levels: usize,
    /// Orders queued at one price; more are cancelled instead of rested.
    pub max_orders_per_level: usize,
}

impl Default for MatchingLimits {
    fn default() -> Self {
        MatchingLimits { max_levels: 64, max_orders_per_level: 32 }
    }
}

#[derive(Debug, Clone)]
pub struct MatchingEngine {
    bids: BTreeMap<Price, VecDeque<Resting>>,
    asks: BTreeMap<Price, VecDeque<Resting>>,
    /// Where each resting order is, so a cancel by id finds its level.
    index: HashMap<OrderId, (Side, Price)>,
    limits: MatchingLimits,
    /// Fills between external orders, which nobody reports; reused so
    /// `add_liquidity` does not allocate.
    external_fills: Vec<Fill>,
    inject: Injector,
}

impl MatchingEngine {
    pub fn new(limits: MatchingLimits, inject: Injector) -> Self {
        MatchingEngine {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            index: HashMap::new(),
            limits,
            external_fills: Vec::new(),
            inject,
        }
    }

    pub fn injected(&self) -> crate::inject::InjectCounts {
        self.inject.counts()
    }

    /// Stage `matching`: matches one order, appending its fills to `fills`.
    #[inline(never)]
    pub fn submit(&mut self, order: Order, fills: &mut Vec<Fill>) -> Outcome {
        self.inject.fire();
        self.execute(order, fills)
    }

    /// Adds another participant's order. Not a traced stage: it models the
    /// venue's other order flow, which the strategy does not wait for.
    pub fn add_liquidity(&mut self, order: Order) -> Outcome {
        let mut fills = std::mem::take(&mut self.external_fills);
        fills.clear();
        let outcome = self.execute(order, &mut fills);
        self.external_fills = fills;
        outcome
    }

    fn execute(&mut self, order: Order, fills: &mut Vec<Fill>) -> Outcome {
        let mut remaining = order.qty;
        let opposite = match order.side {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        while remaining > 0 {
            let entry = match order.side {
                Side::Buy => opposite.first_entry(),
                Side::Sell => opposite.last_entry(),
            };
            let Some(mut entry) = entry else { break };
            let level_price = *entry.key();
            let crosses = match order.side {
                Side::Buy => level_price <= order.price,
                Side::Sell => level_price >= order.price,
            };
            if !crosses {
                break;
            }
            let queue = entry.get_mut();
            while remaining > 0 {
                let Some(maker) = queue.front_mut() else {
                    break;
                };
                let qty = remaining.min(maker.qty);
                fills.push(Fill {
                    taker_id: order.id,
                    maker_id: maker.id,
                    maker_owner: maker.owner,
                    taker_side: order.side,
                    price: level_price,
                    qty,
                });
                maker.qty -= qty;
                remaining -= qty;
                if maker.qty == 0 {
                    let maker_id = maker.id;
                    queue.pop_front();
                    self.index.remove(&maker_id);
                }
            }
            if queue.is_empty() {
                entry.remove();
            }
        }
        let mut outcome = Outcome { filled: order.qty - remaining, ..Outcome::default() };
        if remaining > 0 {
            match order.tif {
                TimeInForce::ImmediateOrCancel => outcome.cancelled = remaining,
                TimeInForce::GoodTillCancel => {
                    if self.rest(order, remaining) {
                        outcome.rested = remaining;
                    } else {
                        outcome.cancelled = remaining;
                    }
                }
            }
        }
        outcome
    }

    fn rest(&mut self, order: Order, qty: Qty) -> bool {
        let limits = self.limits;
        let levels = match order.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let queue = levels.entry(order.price).or_default();
        if queue.len() >= limits.max_orders_per_level {
            return false;
        }
        queue.push_back(Resting { id: order.id, owner: order.owner, qty });
        self.index.insert(order.id, (order.side, order.price));
        if levels.len() > limits.max_levels {
            let dropped = match order.side {
                Side::Buy => levels.pop_first(),
                Side::Sell => levels.pop_last(),
            };
            for resting in dropped.into_iter().flat_map(|(_, queue)| queue) {
                self.index.remove(&resting.id);
            }
        }
        true
    }

    /// Cancels a resting order; returns the quantity it still had, or None
    /// if it is not resting (filled, dropped for depth, or never seen).
    pub fn cancel(&mut self, id: OrderId) -> Option<Qty> {
        let (side, price) = self.index.remove(&id)?;
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let queue = levels.get_mut(&price)?;
        let at = queue.iter().position(|r| r.id == id)?;
        let qty = queue.remove(at).map(|r| r.qty);
        if queue.is_empty() {
            levels.remove(&price);
        }
        qty
    }

    /// Best resting price and the total quantity there.
    pub fn best(&self, side: Side) -> Option<(Price, u64)> {
        let level = match side {
            Side::Buy => self.bids.last_key_value(),
            Side::Sell => self.asks.first_key_value(),
        };
        level.map(|(&p, q)| (p, q.iter().map(|r| u64::from(r.qty)).sum()))
    }

    /// Ids of the orders resting at `price`, in time priority.
    pub fn queue_at(&self, side: Side, price: Price) -> Vec<OrderId> {
        let levels = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        levels.get(&price).map(|q| q.iter().map(|r| r.id).collect()).unwrap_or_default()
    }

    pub fn resting_orders(&self) -> usize {
        self.bids.values().chain(self.asks.values()).map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> MatchingEngine {
        MatchingEngine::new(MatchingLimits::default(), Injector::none())
    }

    fn gtc(id: OrderId, side: Side, price: Price, qty: Qty) -> Order {
        Order { id, owner: Owner::External, side, price, qty, tif: TimeInForce::GoodTillCancel }
    }

    fn submit(m: &mut MatchingEngine, order: Order) -> (Outcome, Vec<Fill>) {
        let mut fills = Vec::new();
        let outcome = m.submit(order, &mut fills);
        (outcome, fills)
    }

    #[test]
    fn non_crossing_orders_rest() {
        let mut m = engine();
        let (o, fills) = submit(&mut m, gtc(1, Side::Buy, 99, 10));
        assert_eq!(o.rested, 10);
        assert!(fills.is_empty());
        submit(&mut m, gtc(2, Side::Sell, 101, 5));
        assert_eq!(m.best(Side::Buy), Some((99, 10)));
        assert_eq!(m.best(Side::Sell), Some((101, 5)));
        assert_eq!(m.resting_orders(), 2);
    }

    #[test]
    fn full_fill_at_the_makers_price() {
        let mut m = engine();
        submit(&mut m, gtc(1, Side::Sell, 100, 10));
        let (o, fills) = submit(&mut m, gtc(2, Side::Buy, 105, 10));
        assert_eq!(o, Outcome { filled: 10, rested: 0, cancelled: 0 });
        assert_eq!(fills.len(), 1);
        assert_eq!((fills[0].maker_id, fills[0].price, fills[0].qty), (1, 100, 10));
        assert_eq!(m.resting_orders(), 0);
    }

    #[test]
    fn partial_fill_rests_the_remainder() {
        let mut m = engine();
        submit(&mut m, gtc(1, Side::Buy, 100, 4));
        let (o, fills) = submit(&mut m, gtc(2, Side::Sell, 100, 10));
        assert_eq!((o.filled, o.rested), (4, 6));
        assert_eq!(fills.len(), 1);
        assert_eq!(m.best(Side::Sell), Some((100, 6)));
        assert_eq!(m.best(Side::Buy), None);
    }

    #[test]
    fn partial_fill_of_the_maker_keeps_its_priority() {
        let mut m = engine();
        submit(&mut m, gtc(1, Side::Sell, 100, 10));
        submit(&mut m, gtc(2, Side::Sell, 100, 10));
        submit(&mut m, gtc(3, Side::Buy, 100, 4));
        assert_eq!(m.queue_at(Side::Sell, 100), [1, 2]);
        assert_eq!(m.best(Side::Sell), Some((100, 16)));
    }

    #[test]
    fn price_then_time_priority() {
        let mut m = engine();
        submit(&mut m, gtc(1, Side::Sell, 101, 5));
        submit(&mut m, gtc(2, Side::Sell, 100, 5));
        submit(&mut m, gtc(3, Side::Sell, 100, 5));
        submit(&mut m, gtc(4, Side::Sell, 102, 5));
        let (o, fills) = submit(&mut m, gtc(9, Side::Buy, 101, 12));
        let makers: Vec<(OrderId, Qty)> = fills.iter().map(|f| (f.maker_id, f.qty)).collect();
        // Better price first (100 before 101), then older first (2 before 3).
        assert_eq!(makers, [(2, 5), (3, 5), (1, 2)]);
        assert_eq!(o.filled, 12);
        assert_eq!(m.best(Side::Sell), Some((101, 3)));
        assert_eq!(m.queue_at(Side::Sell, 102), [4]);
    }

    #[test]
    fn ioc_remainder_is_cancelled() {
        let mut m = engine();
        submit(&mut m, gtc(1, Side::Buy, 100, 3));
        let (o, _) = submit(
            &mut m,
            Order { tif: TimeInForce::ImmediateOrCancel, owner: Owner::Us, ..gtc(2, Side::Sell, 99, 10) },
        );
        assert_eq!(o, Outcome { filled: 3, rested: 0, cancelled: 7 });
        assert_eq!(m.resting_orders(), 0);
    }

    #[test]
    fn cancel_removes_only_that_order() {
        let mut m = engine();
        submit(&mut m, gtc(1, Side::Sell, 100, 5));
        submit(&mut m, gtc(2, Side::Sell, 100, 6));
        submit(&mut m, gtc(3, Side::Sell, 101, 7));
        assert_eq!(m.cancel(2), Some(6));
        assert_eq!(m.cancel(2), None);
        assert_eq!(m.queue_at(Side::Sell, 100), [1]);
        assert_eq!(m.cancel(1), Some(5));
        assert_eq!(m.best(Side::Sell), Some((101, 7)));
        // A filled order can no longer be cancelled.
        submit(&mut m, gtc(4, Side::Buy, 101, 7));
        assert_eq!(m.cancel(3), None);
        assert_eq!(m.resting_orders(), 0);
    }

    #[test]
    fn crossing_liquidity_matches_without_reporting() {
        let mut m = engine();
        m.add_liquidity(gtc(1, Side::Buy, 100, 10));
        let o = m.add_liquidity(gtc(2, Side::Sell, 100, 4));
        assert_eq!(o.filled, 4);
        assert_eq!(m.best(Side::Buy), Some((100, 6)));
    }

    #[test]
    fn depth_and_queue_are_bounded() {
        let mut m = MatchingEngine::new(MatchingLimits { max_levels: 2, max_orders_per_level: 2 }, Injector::none());
        for (id, price) in [(1, 10), (2, 11), (3, 12)] {
            submit(&mut m, gtc(id, Side::Buy, price, 1));
        }
        assert_eq!(m.queue_at(Side::Buy, 10), Vec::<OrderId>::new());
        submit(&mut m, gtc(4, Side::Buy, 12, 1));
        let (o, _) = submit(&mut m, gtc(5, Side::Buy, 12, 1));
        assert_eq!(o.cancelled, 1);
        assert_eq!(m.queue_at(Side::Buy, 12), [3, 4]);
    }
}
