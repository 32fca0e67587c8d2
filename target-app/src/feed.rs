//! The market-data feed: a compact checksummed binary wire format, its
//! encoder and `decode` stage, and the seeded generator the feed thread runs.

use crate::inject::Injector;
use crate::rng::Rng;
use crate::types::{Price, Qty, Side};

const MAGIC: u8 = 0xB7;
const VERSION: u8 = 1;
const KIND_ADD: u8 = 1;
const KIND_CANCEL: u8 = 2;
const KIND_TRADE: u8 = 3;
/// magic, version, kind, payload length, then the u64 sequence number.
const HEADER_LEN: usize = 12;
const CHECKSUM_LEN: usize = 4;
/// order id u64, side u8, price u32, qty u32.
const ORDER_PAYLOAD_LEN: usize = 17;
/// aggressor side u8, price u32, qty u32.
const TRADE_PAYLOAD_LEN: usize = 9;
pub const MAX_FRAME_LEN: usize = HEADER_LEN + ORDER_PAYLOAD_LEN + CHECKSUM_LEN;

/// One market-data event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketEvent {
    /// A new resting order from another participant.
    Add { order_id: u64, side: Side, price: Price, qty: Qty },
    /// (Part of) a resting order was cancelled.
    Cancel { order_id: u64, side: Side, price: Price, qty: Qty },
    /// A trade; `aggressor` took liquidity from the opposite side.
    Trade { aggressor: Side, price: Price, qty: Qty },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub seq: u64,
    pub event: MarketEvent,
}

/// An encoded message in a fixed buffer, so the feed→engine channel carries
/// no per-message heap allocation.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    len: u8,
    bytes: [u8; MAX_FRAME_LEN],
}

impl Frame {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {len} bytes is shorter than the {min}-byte minimum")]
    TooShort { len: usize, min: usize },
    #[error("bad magic byte {0:#04x}")]
    BadMagic(u8),
    #[error("unsupported version {0}")]
    BadVersion(u8),
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("kind {kind} needs a {expected}-byte payload, header says {declared}")]
    PayloadLength { kind: u8, expected: usize, declared: usize },
    #[error("header says {declared} bytes in total, frame has {actual}")]
    FrameLength { declared: usize, actual: usize },
    #[error("checksum {actual:#010x} does not match {expected:#010x}")]
    Checksum { expected: u32, actual: u32 },
    #[error("bad side byte {0:#04x}")]
    BadSide(u8),
    #[error("zero price or quantity")]
    Zero,
}

/// FNV-1a, 32 bit: cheap, byte-at-a-time, and catches every single-bit flip.
fn checksum(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811C_9DC5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Serialises `msg` into a frame.
pub fn encode(msg: &Message) -> Frame {
    let mut bytes = [0u8; MAX_FRAME_LEN];
    let (kind, payload_len) = match msg.event {
        MarketEvent::Add { .. } => (KIND_ADD, ORDER_PAYLOAD_LEN),
        MarketEvent::Cancel { .. } => (KIND_CANCEL, ORDER_PAYLOAD_LEN),
        MarketEvent::Trade { .. } => (KIND_TRADE, TRADE_PAYLOAD_LEN),
    };
    bytes[0] = MAGIC;
    bytes[1] = VERSION;
    bytes[2] = kind;
    // Both payload lengths are < 256.
    bytes[3] = payload_len as u8;
    bytes[4..12].copy_from_slice(&msg.seq.to_le_bytes());
    let p = &mut bytes[HEADER_LEN..HEADER_LEN + payload_len];
    match msg.event {
        MarketEvent::Add { order_id, side, price, qty } | MarketEvent::Cancel { order_id, side, price, qty } => {
            p[0..8].copy_from_slice(&order_id.to_le_bytes());
            p[8] = side.to_wire();
            p[9..13].copy_from_slice(&price.to_le_bytes());
            p[13..17].copy_from_slice(&qty.to_le_bytes());
        }
        MarketEvent::Trade { aggressor, price, qty } => {
            p[0] = aggressor.to_wire();
            p[1..5].copy_from_slice(&price.to_le_bytes());
            p[5..9].copy_from_slice(&qty.to_le_bytes());
        }
    }
    let body_len = HEADER_LEN + payload_len;
    let sum = checksum(&bytes[..body_len]);
    bytes[body_len..body_len + CHECKSUM_LEN].copy_from_slice(&sum.to_le_bytes());
    Frame { len: (body_len + CHECKSUM_LEN) as u8, bytes }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn side_at(b: &[u8], at: usize) -> Result<Side, DecodeError> {
    Side::from_wire(b[at]).ok_or(DecodeError::BadSide(b[at]))
}

/// Stage `decode`: validates and parses one frame.
#[inline(never)]
pub fn decode(buf: &[u8], inject: &mut Injector) -> Result<Message, DecodeError> {
    inject.fire();
    let min = HEADER_LEN + CHECKSUM_LEN;
    if buf.len() < min {
        return Err(DecodeError::TooShort { len: buf.len(), min });
    }
    if buf[0] != MAGIC {
        return Err(DecodeError::BadMagic(buf[0]));
    }
    if buf[1] != VERSION {
        return Err(DecodeError::BadVersion(buf[1]));
    }
    let kind = buf[2];
    let declared = usize::from(buf[3]);
    let expected = match kind {
        KIND_ADD | KIND_CANCEL => ORDER_PAYLOAD_LEN,
        KIND_TRADE => TRADE_PAYLOAD_LEN,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    if declared != expected {
        return Err(DecodeError::PayloadLength { kind, expected, declared });
    }
    let body_len = HEADER_LEN + declared;
    if buf.len() != body_len + CHECKSUM_LEN {
        return Err(DecodeError::FrameLength { declared: body_len + CHECKSUM_LEN, actual: buf.len() });
    }
    let expected_sum = le_u32(buf, body_len);
    let actual_sum = checksum(&buf[..body_len]);
    if expected_sum != actual_sum {
        return Err(DecodeError::Checksum { expected: expected_sum, actual: actual_sum });
    }
    let seq = le_u64(buf, 4);
    let p = &buf[HEADER_LEN..body_len];
    let event = if kind == KIND_TRADE {
        MarketEvent::Trade { aggressor: side_at(p, 0)?, price: le_u32(p, 1), qty: le_u32(p, 5) }
    } else {
        let order_id = le_u64(p, 0);
        let side = side_at(p, 8)?;
        let price = le_u32(p, 9);
        let qty = le_u32(p, 13);
        if kind == KIND_ADD {
            MarketEvent::Add { order_id, side, price, qty }
        } else {
            MarketEvent::Cancel { order_id, side, price, qty }
        }
    };
    let (MarketEvent::Add { price, qty, .. }
    | MarketEvent::Cancel { price, qty, .. }
    | MarketEvent::Trade { price, qty, .. }) = event;
    if price == 0 || qty == 0 {
        return Err(DecodeError::Zero);
    }
    Ok(Message { seq, event })
}

/// How many recently added orders the generator remembers, so cancels and
/// trades refer to liquidity that exists rather than to random prices.
const RECENT_ORDERS: usize = 256;
const MIN_MID: Price = 1_000;
const MAX_MID: Price = 1_000_000;

#[derive(Debug, Clone, Copy)]
struct Resting {
    order_id: u64,
    side: Side,
    price: Price,
    qty: Qty,
}

/// A seeded market simulation: a random-walk mid price with orders added a
/// few ticks away, cancelled, and traded against.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    seq: u64,
    mid: Price,
    next_order_id: u64,
    recent: Vec<Resting>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: Rng::new(seed),
            seq: 0,
            mid: 10_000,
            next_order_id: 1,
            recent: Vec::with_capacity(RECENT_ORDERS),
        }
    }

    pub fn next_message(&mut self) -> Message {
        let seq = crate::tick::next_seq(&mut self.seq);
        if self.rng.chance(1, 8) {
            self.mid = if self.rng.chance(1, 2) { (self.mid + 1).min(MAX_MID) } else { (self.mid - 1).max(MIN_MID) };
        }
        let roll = self.rng.below(100);
        let event = match roll {
            0..60 => self.add(),
            60..90 => self.cancel().unwrap_or_else(|| self.add()),
            _ => self.trade(),
        };
        Message { seq, event }
    }

    fn add(&mut self) -> MarketEvent {
        let side = if self.rng.chance(1, 2) { Side::Buy } else { Side::Sell };
        let offset = self.rng.range(1, 10);
        let price = match side {
            Side::Buy => self.mid - offset,
            Side::Sell => self.mid + offset,
        };
        let qty = self.rng.range(1, 20) * 10;
        let order = Resting { order_id: self.next_order_id, side, price, qty };
        self.next_order_id += 1;
        if self.recent.len() < RECENT_ORDERS {
            self.recent.push(order);
        } else {
            // Forget a random old order; its liquidity just stays in the book.
            let i = self.rng.below(RECENT_ORDERS as u32) as usize;
            self.recent[i] = order;
        }
        MarketEvent::Add { order_id: order.order_id, side, price, qty }
    }

    fn cancel(&mut self) -> Option<MarketEvent> {
        let n = u32::try_from(self.recent.len()).ok().filter(|&n| n > 0)?;
        let i = self.rng.below(n) as usize;
        let order = self.recent[i];
        self.recent.swap_remove(i);
        Some(MarketEvent::Cancel { order_id: order.order_id, side: order.side, price: order.price, qty: order.qty })
    }

    fn trade(&mut self) -> MarketEvent {
        let aggressor = if self.rng.chance(1, 2) { Side::Buy } else { Side::Sell };
        let price = match aggressor {
            Side::Buy => self.mid + 1,
            Side::Sell => self.mid - 1,
        };
        MarketEvent::Trade { aggressor, price, qty: self.rng.range(1, 10) * 10 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Message) -> Result<Message, DecodeError> {
        decode(encode(&msg).as_bytes(), &mut Injector::none())
    }

    #[test]
    fn every_kind_round_trips() {
        let events = [
            MarketEvent::Add { order_id: u64::MAX - 3, side: Side::Buy, price: 9_999, qty: 120 },
            MarketEvent::Cancel { order_id: 42, side: Side::Sell, price: u32::MAX, qty: 1 },
            MarketEvent::Trade { aggressor: Side::Sell, price: 10_001, qty: 30 },
        ];
        for (i, event) in events.into_iter().enumerate() {
            let msg = Message { seq: 1000 + i as u64, event };
            assert_eq!(round_trip(msg), Ok(msg));
        }
    }

    #[test]
    fn generated_stream_round_trips() {
        let mut g = Generator::new(3);
        for _ in 0..10_000 {
            let msg = g.next_message();
            assert_eq!(round_trip(msg), Ok(msg));
        }
    }

    #[test]
    fn generator_is_deterministic() {
        let mut a = Generator::new(9);
        let mut b = Generator::new(9);
        for _ in 0..1000 {
            assert_eq!(a.next_message(), b.next_message());
        }
    }

    fn sample() -> Vec<u8> {
        encode(&Message { seq: 7, event: MarketEvent::Add { order_id: 5, side: Side::Buy, price: 100, qty: 10 } })
            .as_bytes()
            .to_vec()
    }

    fn decode_bytes(b: &[u8]) -> Result<Message, DecodeError> {
        decode(b, &mut Injector::none())
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let good = sample();
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert!(decode_bytes(&bad).is_err(), "flip {byte}.{bit} accepted");
            }
        }
    }

    #[test]
    fn corrupt_frames_say_what_is_wrong() {
        let good = sample();
        assert!(matches!(decode_bytes(&good[..5]), Err(DecodeError::TooShort { len: 5, .. })));
        let mut bad = good.clone();
        bad[0] = 0;
        assert_eq!(decode_bytes(&bad), Err(DecodeError::BadMagic(0)));
        let mut bad = good.clone();
        bad[2] = 9;
        assert_eq!(decode_bytes(&bad), Err(DecodeError::UnknownKind(9)));
        let mut bad = good.clone();
        bad[3] = 9;
        assert!(matches!(decode_bytes(&bad), Err(DecodeError::PayloadLength { declared: 9, .. })));
        assert!(matches!(decode_bytes(&good[..good.len() - 1]), Err(DecodeError::FrameLength { .. })));
        let mut bad = good.clone();
        bad[HEADER_LEN + 9] ^= 0xFF;
        assert!(matches!(decode_bytes(&bad), Err(DecodeError::Checksum { .. })));
    }

    #[test]
    fn bad_side_with_valid_checksum_rejected() {
        let mut bad = sample();
        bad[HEADER_LEN + 8] = b'X';
        let body = HEADER_LEN + ORDER_PAYLOAD_LEN;
        let sum = checksum(&bad[..body]);
        bad[body..].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(decode_bytes(&bad), Err(DecodeError::BadSide(b'X')));
        let frame: [u8; MAX_FRAME_LEN] = bad.try_into().expect("frame length");
        assert_eq!(frame.len(), MAX_FRAME_LEN);
    }
}
