//! Plain value types shared by several stages: sides, prices and quantities,
//! and the order a signal asks for.

/// Price in integer ticks; the feed never sends zero.
pub type Price = u32;
/// Quantity in lots.
pub type Qty = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// +1 for a buy, -1 for a sell: the sign of a fill's position change.
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    pub fn to_wire(self) -> u8 {
        match self {
            Side::Buy => b'B',
            Side::Sell => b'S',
        }
    }

    pub fn from_wire(byte: u8) -> Option<Side> {
        match byte {
            b'B' => Some(Side::Buy),
            b'S' => Some(Side::Sell),
            _ => None,
        }
    }
}

/// An order the strategy wants to send, before risk and matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderIntent {
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
}
