//! The order gateway: serialises each outbound order or fill into a small
//! binary message and writes it to a socket, one write(2) per message.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use crate::engine::Outbound;
use crate::inject::Injector;
use crate::matching::TimeInForce;

const KIND_ORDER: u8 = b'O';
const KIND_FILL: u8 = b'F';

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot create the gateway socket pair")]
    Socket(#[source] io::Error),
    #[error("cannot write to the gateway socket")]
    Write(#[source] io::Error),
}

#[derive(Debug)]
pub struct Gateway {
    stream: UnixStream,
    /// Reused serialisation buffer: no allocation per message.
    buf: Vec<u8>,
    bytes_sent: u64,
    inject: Injector,
}

impl Gateway {
    /// A gateway writing into one end of a fresh socket pair; the other end
    /// is returned for a reader (`drain`) to consume.
    pub fn with_socket_pair(inject: Injector) -> Result<(Gateway, UnixStream), GatewayError> {
        let (ours, theirs) = UnixStream::pair().map_err(GatewayError::Socket)?;
        Ok((Gateway { stream: ours, buf: Vec::with_capacity(64), bytes_sent: 0, inject }, theirs))
    }

    pub fn injected(&self) -> crate::inject::InjectCounts {
        self.inject.counts()
    }

    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Stage `gateway`: serialises `msg` and writes it to the socket.
    #[inline(never)]
    pub fn send(&mut self, msg: &Outbound) -> Result<(), GatewayError> {
        self.inject.fire();
        encode(msg, &mut self.buf);
        self.stream.write_all(&self.buf).map_err(GatewayError::Write)?;
        self.bytes_sent += self.buf.len() as u64;
        Ok(())
    }
}

/// Length-prefixed little-endian record: u16 length of the rest, kind byte,
/// then the fields.
pub fn encode(msg: &Outbound, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0, 0]);
    match msg {
        Outbound::Order(o) => {
            buf.push(KIND_ORDER);
            buf.extend_from_slice(&o.id.to_le_bytes());
            buf.push(o.side.to_wire());
            buf.extend_from_slice(&o.price.to_le_bytes());
            buf.extend_from_slice(&o.qty.to_le_bytes());
            buf.push(match o.tif {
                TimeInForce::GoodTillCancel => b'G',
                TimeInForce::ImmediateOrCancel => b'I',
            });
        }
        Outbound::Fill(f) => {
            buf.push(KIND_FILL);
            buf.extend_from_slice(&f.taker_id.to_le_bytes());
            buf.extend_from_slice(&f.maker_id.to_le_bytes());
            buf.push(f.taker_side.to_wire());
            buf.extend_from_slice(&f.price.to_le_bytes());
            buf.extend_from_slice(&f.qty.to_le_bytes());
        }
    }
    // Records are at most 28 bytes, so the length always fits.
    let len = (buf.len() - 2) as u16;
    buf[..2].copy_from_slice(&len.to_le_bytes());
}

/// What a drain read from its end of the gateway socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub bytes: u64,
    pub orders: u64,
    pub fills: u64,
}

/// Reads and parses gateway records until the gateway closes its end; plays
/// the exchange so the gateway's writes never fill the socket buffer.
pub fn drain(mut stream: UnixStream) -> io::Result<Drained> {
    let mut drained = Drained::default();
    let mut chunk = [0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::with_capacity(chunk.len());
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        drained.bytes += n as u64;
        pending.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while pending.len() - at >= 3 {
            let len = usize::from(u16::from_le_bytes([pending[at], pending[at + 1]]));
            if pending.len() - at < 2 + len {
                break;
            }
            match pending[at + 2] {
                KIND_ORDER => drained.orders += 1,
                KIND_FILL => drained.fills += 1,
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown gateway record kind {other:#04x}"),
                    ));
                }
            }
            at += 2 + len;
        }
        pending.drain(..at);
    }
    Ok(drained)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::{Fill, Order, Owner};
    use crate::types::Side;

    #[test]
    fn drain_counts_what_the_gateway_sent() {
        let (mut gw, theirs) = Gateway::with_socket_pair(Injector::none()).expect("socket pair");
        let reader = std::thread::spawn(move || drain(theirs));
        let order = Outbound::Order(Order {
            id: 7,
            owner: Owner::Us,
            side: Side::Buy,
            price: 100,
            qty: 10,
            tif: TimeInForce::ImmediateOrCancel,
        });
        let fill = Outbound::Fill(Fill {
            taker_id: 7,
            maker_id: 3,
            maker_owner: Owner::External,
            taker_side: Side::Buy,
            price: 100,
            qty: 10,
        });
        for _ in 0..1000 {
            gw.send(&order).expect("send order");
            gw.send(&fill).expect("send fill");
        }
        let sent = gw.bytes_sent();
        drop(gw);
        let drained = reader.join().expect("drain thread").expect("drain");
        assert_eq!(drained, Drained { bytes: sent, orders: 1000, fills: 1000 });
    }
}
