//! The trading signal: book imbalance over the top levels plus short-term
//! momentum of the mid price; fires an aggressive order when strong enough.

use crate::book::OrderBook;
use crate::feed::MarketEvent;
use crate::inject::Injector;
use crate::types::{OrderIntent, Side};

#[derive(Debug, Clone, Copy)]
pub struct SignalConfig {
    /// Levels per side summed into the imbalance.
    pub levels: usize,
    /// |score| above which the signal fires.
    pub threshold: f64,
    /// Messages after a fire during which it stays quiet, so one imbalance
    /// does not send a burst of identical orders.
    pub cooldown: u32,
    /// Smoothing factor of the mid-price EMA.
    pub ema_alpha: f64,
    pub lot: u32,
    /// Ticks beyond the touch the order may trade at: the venue's prices
    /// lag the public book a little, and an IOC order priced exactly at the
    /// touch would mostly miss.
    pub slippage_ticks: u32,
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig { levels: 3, threshold: 0.45, cooldown: 6, ema_alpha: 0.05, lot: 10, slippage_ticks: 4 }
    }
}

#[derive(Debug, Clone)]
pub struct Signal {
    config: SignalConfig,
    ema_mid: Option<f64>,
    since_fire: u32,
    last_score: f64,
    inject: Injector,
}

impl Signal {
    pub fn new(config: SignalConfig, inject: Injector) -> Self {
        Signal { config, ema_mid: None, since_fire: 0, last_score: 0.0, inject }
    }

    pub fn injected(&self) -> crate::inject::InjectCounts {
        self.inject.counts()
    }

    /// The score computed by the last update, in [-1.5, 1.5].
    pub fn last_score(&self) -> f64 {
        self.last_score
    }

    /// Stage `signal`: folds the book after `event` into the signal and
    /// returns an order when it fires.
    #[inline(never)]
    pub fn update(&mut self, book: &OrderBook, event: &MarketEvent) -> Option<OrderIntent> {
        self.inject.fire();
        self.since_fire = self.since_fire.saturating_add(1);
        let (bid, ask) = (book.best_bid()?, book.best_ask()?);
        let bid_qty = book.top_qty(Side::Buy, self.config.levels) as f64;
        let ask_qty = book.top_qty(Side::Sell, self.config.levels) as f64;
        let imbalance = (bid_qty - ask_qty) / (bid_qty + ask_qty);

        let mid = (f64::from(bid.price) + f64::from(ask.price)) / 2.0;
        let ema = self.ema_mid.unwrap_or(mid);
        let ema = ema + self.config.ema_alpha * (mid - ema);
        self.ema_mid = Some(ema);
        let momentum = ((mid - ema) / 4.0).clamp(-0.25, 0.25);

        // Aggressive trades lean the score their way.
        let flow = match *event {
            MarketEvent::Trade { aggressor, .. } => 0.25 * aggressor.sign() as f64,
            MarketEvent::Add { .. } | MarketEvent::Cancel { .. } => 0.0,
        };
        let score = imbalance + momentum + flow;
        self.last_score = score;

        if self.since_fire < self.config.cooldown || score.abs() < self.config.threshold {
            return None;
        }
        self.since_fire = 0;
        let side = if score > 0.0 { Side::Buy } else { Side::Sell };
        // Cross the spread: buy at the best ask, sell at the best bid, plus
        // the slippage allowance.
        let price = match side {
            Side::Buy => ask.price.saturating_add(self.config.slippage_ticks),
            Side::Sell => bid.price.saturating_sub(self.config.slippage_ticks).max(1),
        };
        // 1..=10 lots, more when the signal is stronger; score is bounded.
        let lots = 1 + ((score.abs() - self.config.threshold) * 8.0).clamp(0.0, 9.0) as u32;
        Some(OrderIntent { side, price, qty: lots * self.config.lot })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Generator;

    fn add(side: Side, price: u32, qty: u32) -> MarketEvent {
        MarketEvent::Add { order_id: 0, side, price, qty }
    }

    #[test]
    fn heavy_bids_fire_a_buy_through_the_ask() {
        let mut book = OrderBook::new(64, Injector::none());
        let mut signal =
            Signal::new(SignalConfig { cooldown: 0, slippage_ticks: 2, ..SignalConfig::default() }, Injector::none());
        for event in [add(Side::Sell, 101, 10), add(Side::Buy, 99, 500)] {
            book.apply(&event);
        }
        let intent = signal.update(&book, &add(Side::Buy, 99, 500));
        assert_eq!(intent.map(|i| (i.side, i.price)), Some((Side::Buy, 103)));
    }

    #[test]
    fn balanced_or_one_sided_book_does_not_fire() {
        let mut book = OrderBook::new(64, Injector::none());
        let mut signal = Signal::new(SignalConfig::default(), Injector::none());
        book.apply(&add(Side::Buy, 99, 50));
        assert_eq!(signal.update(&book, &add(Side::Buy, 99, 50)), None);
        book.apply(&add(Side::Sell, 101, 50));
        for _ in 0..20 {
            assert_eq!(signal.update(&book, &add(Side::Sell, 101, 50)), None);
        }
    }

    #[test]
    fn cooldown_spaces_out_fires_on_the_generated_market() {
        let config = SignalConfig::default();
        let mut book = OrderBook::new(64, Injector::none());
        let mut signal = Signal::new(config, Injector::none());
        let mut gen_ = Generator::new(1);
        let mut fired_at = Vec::new();
        for i in 0..20_000u32 {
            let msg = gen_.next_message();
            book.apply(&msg.event);
            if signal.update(&book, &msg.event).is_some() {
                fired_at.push(i);
            }
        }
        assert!(fired_at.windows(2).all(|w| w[1] - w[0] >= config.cooldown));
        // Busy enough to exercise risk and matching, quiet enough to be a signal.
        assert!((500..6_000).contains(&fired_at.len()), "fired {} times", fired_at.len());
    }
}
