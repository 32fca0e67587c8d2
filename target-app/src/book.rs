//! The public market-by-price order book built from the feed: aggregated
//! quantity per price level on each side, with a bounded depth.

use std::collections::BTreeMap;

use crate::feed::MarketEvent;
use crate::inject::Injector;
use crate::types::{Price, Side};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub price: Price,
    pub qty: u64,
}

#[derive(Debug, Clone)]
pub struct OrderBook {
    bids: BTreeMap<Price, u64>,
    asks: BTreeMap<Price, u64>,
    /// Levels kept per side; the worst ones are dropped beyond it, as a
    /// depth-limited feed would, so memory stays bounded as the price walks.
    max_levels: usize,
    inject: Injector,
}

impl OrderBook {
    pub fn new(max_levels: usize, inject: Injector) -> Self {
        OrderBook { bids: BTreeMap::new(), asks: BTreeMap::new(), max_levels: max_levels.max(1), inject }
    }

    pub fn injected(&self) -> crate::inject::InjectCounts {
        self.inject.counts()
    }

    /// Stage `book`: applies one market-data event.
    #[inline(never)]
    pub fn apply(&mut self, event: &MarketEvent) {
        self.inject.fire();
        match *event {
            MarketEvent::Add { side, price, qty, .. } => {
                // An add through the opposite best means that liquidity is
                // gone (the feed does not send every fill), so uncross.
                match side {
                    Side::Buy => {
                        while let Some(entry) = self.asks.first_entry() {
                            if *entry.key() > price {
                                break;
                            }
                            entry.remove();
                        }
                    }
                    Side::Sell => {
                        while let Some(entry) = self.bids.last_entry() {
                            if *entry.key() < price {
                                break;
                            }
                            entry.remove();
                        }
                    }
                }
                let max_levels = self.max_levels;
                let levels = self.side_mut(side);
                *levels.entry(price).or_insert(0) += u64::from(qty);
                if levels.len() > max_levels {
                    // Drop the level furthest from the touch.
                    match side {
                        Side::Buy => levels.pop_first(),
                        Side::Sell => levels.pop_last(),
                    };
                }
            }
            MarketEvent::Cancel { side, price, qty, .. } => self.reduce(side, price, u64::from(qty)),
            MarketEvent::Trade { aggressor, price, qty } => self.reduce(aggressor.opposite(), price, u64::from(qty)),
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<Price, u64> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn side(&self, side: Side) -> &BTreeMap<Price, u64> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// Removes up to `qty` at `price`, deleting the level when it empties; a
    /// level we never saw (dropped for depth) is ignored.
    fn reduce(&mut self, side: Side, price: Price, qty: u64) {
        let levels = self.side_mut(side);
        if let Some(level_qty) = levels.get_mut(&price) {
            if *level_qty <= qty {
                levels.remove(&price);
            } else {
                *level_qty -= qty;
            }
        }
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.last_key_value().map(|(&price, &qty)| Level { price, qty })
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.first_key_value().map(|(&price, &qty)| Level { price, qty })
    }

    pub fn best(&self, side: Side) -> Option<Level> {
        match side {
            Side::Buy => self.best_bid(),
            Side::Sell => self.best_ask(),
        }
    }

    /// Levels from the touch outwards.
    pub fn depth(&self, side: Side) -> Box<dyn Iterator<Item = Level> + '_> {
        let to_level = |(&price, &qty): (&Price, &u64)| Level { price, qty };
        match side {
            Side::Buy => Box::new(self.bids.iter().rev().map(to_level)),
            Side::Sell => Box::new(self.asks.iter().map(to_level)),
        }
    }

    /// Total quantity in the best `levels` levels of `side`.
    pub fn top_qty(&self, side: Side, levels: usize) -> u64 {
        match side {
            Side::Buy => self.bids.values().rev().take(levels).sum(),
            Side::Sell => self.asks.values().take(levels).sum(),
        }
    }

    pub fn level_count(&self, side: Side) -> usize {
        self.side(side).len()
    }

    pub fn qty_at(&self, side: Side, price: Price) -> u64 {
        self.side(side).get(&price).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(side: Side, price: Price, qty: u32) -> MarketEvent {
        MarketEvent::Add { order_id: 0, side, price, qty }
    }

    fn cancel(side: Side, price: Price, qty: u32) -> MarketEvent {
        MarketEvent::Cancel { order_id: 0, side, price, qty }
    }

    fn book() -> OrderBook {
        OrderBook::new(64, Injector::none())
    }

    #[test]
    fn levels_aggregate_and_best_prices() {
        let mut b = book();
        assert_eq!(b.best_bid(), None);
        b.apply(&add(Side::Buy, 99, 10));
        b.apply(&add(Side::Buy, 98, 5));
        b.apply(&add(Side::Buy, 99, 7));
        b.apply(&add(Side::Sell, 101, 3));
        b.apply(&add(Side::Sell, 103, 4));
        assert_eq!(b.best_bid(), Some(Level { price: 99, qty: 17 }));
        assert_eq!(b.best_ask(), Some(Level { price: 101, qty: 3 }));
        let bids: Vec<Price> = b.depth(Side::Buy).map(|l| l.price).collect();
        assert_eq!(bids, [99, 98]);
        let asks: Vec<Price> = b.depth(Side::Sell).map(|l| l.price).collect();
        assert_eq!(asks, [101, 103]);
        assert_eq!(b.top_qty(Side::Buy, 1), 17);
        assert_eq!(b.top_qty(Side::Sell, 5), 7);
    }

    #[test]
    fn cancels_reduce_and_delete_levels() {
        let mut b = book();
        b.apply(&add(Side::Buy, 99, 10));
        b.apply(&add(Side::Buy, 98, 5));
        b.apply(&cancel(Side::Buy, 99, 4));
        assert_eq!(b.qty_at(Side::Buy, 99), 6);
        b.apply(&cancel(Side::Buy, 99, 6));
        assert_eq!(b.qty_at(Side::Buy, 99), 0);
        assert_eq!(b.best_bid(), Some(Level { price: 98, qty: 5 }));
        // Over-cancel and unknown levels are harmless.
        b.apply(&cancel(Side::Buy, 98, 50));
        b.apply(&cancel(Side::Sell, 500, 1));
        assert_eq!(b.level_count(Side::Buy), 0);
        assert_eq!(b.level_count(Side::Sell), 0);
    }

    #[test]
    fn trades_take_from_the_opposite_side() {
        let mut b = book();
        b.apply(&add(Side::Sell, 101, 10));
        b.apply(&MarketEvent::Trade { aggressor: Side::Buy, price: 101, qty: 4 });
        assert_eq!(b.qty_at(Side::Sell, 101), 6);
    }

    #[test]
    fn add_through_the_touch_uncrosses() {
        let mut b = book();
        b.apply(&add(Side::Sell, 101, 10));
        b.apply(&add(Side::Sell, 102, 10));
        b.apply(&add(Side::Sell, 104, 10));
        b.apply(&add(Side::Buy, 102, 1));
        assert_eq!(b.best_ask().map(|l| l.price), Some(104));
        assert_eq!(b.best_bid().map(|l| l.price), Some(102));
    }

    #[test]
    fn depth_is_bounded_by_dropping_the_worst_level() {
        let mut b = OrderBook::new(3, Injector::none());
        for p in [10, 11, 12, 13] {
            b.apply(&add(Side::Buy, p, 1));
        }
        for p in [23, 22, 21, 20] {
            b.apply(&add(Side::Sell, p, 1));
        }
        let bids: Vec<Price> = b.depth(Side::Buy).map(|l| l.price).collect();
        let asks: Vec<Price> = b.depth(Side::Sell).map(|l| l.price).collect();
        assert_eq!(bids, [13, 12, 11]);
        assert_eq!(asks, [20, 21, 22]);
    }
}
