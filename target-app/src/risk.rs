//! Pre-trade risk: per-order size and notional limits, and a net position
//! limit that counts the order as if it filled completely.

use crate::inject::Injector;
use crate::types::{OrderIntent, Qty, Side};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskLimits {
    pub max_order_qty: Qty,
    /// price × qty, in ticks × lots.
    pub max_notional: u64,
    /// Absolute net position, in lots.
    pub max_position: i64,
}

impl Default for RiskLimits {
    fn default() -> Self {
        // Tuned to the generated market (mid ≈ 10 000 ticks, orders of 10–100
        // lots) so that every kind of rejection occurs in a normal run.
        RiskLimits { max_order_qty: 70, max_notional: 600_000, max_position: 1_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RiskReject {
    #[error("order quantity {qty} exceeds the limit of {max}")]
    OrderQty { qty: Qty, max: Qty },
    #[error("order notional {notional} exceeds the limit of {max}")]
    Notional { notional: u64, max: u64 },
    #[error("position would reach {projected}, beyond the limit of ±{max}")]
    Position { projected: i64, max: i64 },
}

#[derive(Debug, Clone)]
pub struct RiskEngine {
    limits: RiskLimits,
    position: i64,
    inject: Injector,
}

impl RiskEngine {
    pub fn new(limits: RiskLimits, inject: Injector) -> Self {
        RiskEngine { limits, position: 0, inject }
    }

    pub fn injected(&self) -> crate::inject::InjectCounts {
        self.inject.counts()
    }

    pub fn position(&self) -> i64 {
        self.position
    }

    /// Stage `risk_check`: accepts or rejects one order.
    #[inline(never)]
    pub fn check(&mut self, order: &OrderIntent) -> Result<(), RiskReject> {
        self.inject.fire();
        if order.qty > self.limits.max_order_qty {
            return Err(RiskReject::OrderQty { qty: order.qty, max: self.limits.max_order_qty });
        }
        let notional = u64::from(order.price) * u64::from(order.qty);
        if notional > self.limits.max_notional {
            return Err(RiskReject::Notional { notional, max: self.limits.max_notional });
        }
        let projected = self.position + order.side.sign() * i64::from(order.qty);
        if projected.abs() > self.limits.max_position {
            return Err(RiskReject::Position { projected, max: self.limits.max_position });
        }
        Ok(())
    }

    /// Books a fill where we were on `side`.
    pub fn on_fill(&mut self, side: Side, qty: Qty) {
        self.position += side.sign() * i64::from(qty);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> RiskEngine {
        RiskEngine::new(RiskLimits { max_order_qty: 100, max_notional: 10_000, max_position: 150 }, Injector::none())
    }

    fn order(side: Side, price: u32, qty: u32) -> OrderIntent {
        OrderIntent { side, price, qty }
    }

    #[test]
    fn within_limits_passes() {
        assert_eq!(engine().check(&order(Side::Buy, 100, 100)), Ok(()));
    }

    #[test]
    fn oversize_order_rejected() {
        assert_eq!(engine().check(&order(Side::Buy, 1, 101)), Err(RiskReject::OrderQty { qty: 101, max: 100 }));
    }

    #[test]
    fn notional_limit_rejects() {
        assert_eq!(
            engine().check(&order(Side::Sell, 101, 100)),
            Err(RiskReject::Notional { notional: 10_100, max: 10_000 })
        );
    }

    #[test]
    fn position_limit_counts_fills_and_allows_reducing() {
        let mut risk = engine();
        risk.on_fill(Side::Buy, 100);
        assert_eq!(risk.position(), 100);
        assert_eq!(risk.check(&order(Side::Buy, 10, 60)), Err(RiskReject::Position { projected: 160, max: 150 }));
        assert_eq!(risk.check(&order(Side::Buy, 10, 50)), Ok(()));
        // Selling reduces exposure even when the order is large.
        assert_eq!(risk.check(&order(Side::Sell, 10, 100)), Ok(()));
        risk.on_fill(Side::Sell, 300);
        assert_eq!(risk.check(&order(Side::Sell, 10, 60)), Err(RiskReject::Position { projected: -260, max: 150 }));
    }
}
