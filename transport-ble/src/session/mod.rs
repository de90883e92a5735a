//! The customer and merchant session state machines (SPEC §14.5): chunks and `now` in,
//! chunks out, no IO. They drive offpay-protocol's `Wallet` and `Acceptor`.
//!
//! The exchange, after the customer writes State = start:
//!
//! 1. customer → merchant: hello `0x01 ‖ 0x21 ‖ service UUID ‖ customer X25519 key` (plain);
//! 2. merchant → customer: sealed `0x03 ‖ PaymentRequest ‖ binding`, the binding being the
//!    merchant's signature over this session's transcript (SPEC §14.5);
//! 3. customer → merchant: sealed `0x01 ‖ Payment`, or `0x02 ‖ code` when the wallet refuses
//!    or the customer declines;
//! 4. merchant → customer: sealed `0x01 ‖ Receipt`, or `0x02 ‖ code` when the acceptor refuses.
//!
//! After the handshake a payment takes one and a half round trips. Any error ends the session:
//! the state machine refuses all further input with [`BleError::Closed`]. A dropped link is
//! resumed by a new session over the same engagement; the merchant sends the same request
//! again, and `Wallet::pay` and `Acceptor::accept` return what they stored the first time.

use crate::chunk::{LAST, MORE, Reassembler};
use crate::engagement::{self, Engagement, MerchantEngagement};
use crate::seal::{self, Direction, TAG_LEN};
use crate::{BleError, MAX_FRAME, chunk_len};
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, PaymentId, Signer, Store, TrustStore, Wallet};
use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey, StaticSecret};

mod customer;
mod merchant;

pub use customer::{CustomerOutcome, CustomerSession};
pub use merchant::{MerchantOutcome, MerchantSession};

/// Type byte of the customer's hello (after the version byte 0x01).
pub const HELLO_TYPE: u8 = 0x21;
/// Length of the hello.
pub const HELLO_LEN: usize = 2 + 16 + 32;
/// Sealed-frame kind: an offpay message follows.
pub const KIND_MESSAGE: u8 = 0x01;
/// Sealed-frame kind: a refusal follows (u16 big-endian SPEC code).
pub const KIND_REFUSAL: u8 = 0x02;
/// Sealed-frame kind: a PaymentRequest follows, then the merchant's 64-byte signature over
/// the session transcript (domain [`offpay_protocol::SESSION_BINDING_DOMAIN`]).
pub const KIND_BOUND_REQUEST: u8 = 0x03;
/// Length of a session binding (an Ed25519 signature).
pub const BINDING_LEN: usize = 64;
/// The refusal code a customer sends when it declines the request.
pub const DECLINED: u16 = BleError::Declined.code();

/// The frame waiting to be sent, and how much of it has been handed out as chunks.
struct Outbox {
    buf: [u8; MAX_FRAME],
    len: usize,
    pos: usize,
    pending: bool,
}

impl Outbox {
    const fn new() -> Self {
        Outbox {
            buf: [0; MAX_FRAME],
            len: 0,
            pos: 0,
            pending: false,
        }
    }

    fn load(&mut self, len: usize) {
        self.len = len;
        self.pos = 0;
        self.pending = true;
    }

    /// Seals `kind ‖ body` under `dir` into the outbox.
    fn seal(&mut self, dir: &mut Direction, kind: u8, body: &[u8]) -> Result<(), BleError> {
        let n = 1 + body.len();
        if n + TAG_LEN > MAX_FRAME {
            return Err(BleError::TooLarge);
        }
        self.buf[0] = kind;
        self.buf[1..n].copy_from_slice(body);
        let len = dir.seal(&mut self.buf, n)?;
        self.load(len);
        Ok(())
    }

    fn next_chunk(&mut self, mtu: u16, out: &mut [u8]) -> Option<usize> {
        if !self.pending {
            return None;
        }
        let data = chunk_len(mtu)
            .ok()?
            .checked_sub(1)?
            .min(out.len().checked_sub(1)?);
        let n = (self.len - self.pos).min(data);
        out[1..=n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        out[0] = if self.pos == self.len { LAST } else { MORE };
        self.pending = self.pos < self.len;
        Some(n + 1)
    }
}

/// Splits an opened frame into kind and body.
fn kind(plain: &[u8]) -> Result<(u8, &[u8]), BleError> {
    match plain.split_first() {
        Some((&k, body)) if k == KIND_MESSAGE || k == KIND_REFUSAL || k == KIND_BOUND_REQUEST => {
            Ok((k, body))
        }
        _ => Err(BleError::Unexpected),
    }
}

fn refusal_code(body: &[u8]) -> Result<u16, BleError> {
    match body {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(BleError::Unexpected),
    }
}
