//! An in-memory link between a [`CustomerSession`] and a [`MerchantSession`], for tests and
//! benchmarks: a chosen ATT MTU, a one-way latency (virtual time, nothing sleeps), and a cut
//! after N chunks, as when a customer walks out of range.

use crate::session::{CustomerSession, MerchantSession};
use crate::{BleError, chunk_len};
use core::time::Duration;
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, Signer, Store, Timestamp, TrustStore, Wallet};

/// The link's behaviour.
#[derive(Clone, Copy, Debug)]
pub struct LinkConfig {
    /// The ATT MTU both sides negotiated (23 to 517).
    pub mtu: u16,
    /// One-way latency of each burst of chunks.
    pub latency: Duration,
    /// Drop the link when this many chunks (both directions together) have been delivered:
    /// the next chunk is lost and both sessions are abandoned mid-exchange.
    pub cut_after: Option<usize>,
}

impl LinkConfig {
    /// A link at `mtu` with no latency and no cut.
    pub fn mtu(mtu: u16) -> Self {
        LinkConfig {
            mtu,
            latency: Duration::ZERO,
            cut_after: None,
        }
    }
}

/// What went over the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkReport {
    /// Chunks written customer → merchant (Client2Server).
    pub chunks_c2s: usize,
    /// Chunks notified merchant → customer (Server2Client).
    pub chunks_s2c: usize,
    /// ATT PDU bytes on air, customer → merchant (3-byte ATT header included).
    pub bytes_c2s: usize,
    /// ATT PDU bytes on air, merchant → customer (3-byte ATT header included).
    pub bytes_s2c: usize,
    /// Bursts in alternating directions (the hello is the first).
    pub legs: usize,
    /// Virtual time: one latency per leg.
    pub elapsed: Duration,
    /// Whether the link was cut before the exchange finished.
    pub cut: bool,
}

impl LinkReport {
    /// Round trips after the hello (legs after the first, halved, rounded up).
    pub fn round_trips_after_handshake(&self) -> usize {
        self.legs.saturating_sub(1).div_ceil(2)
    }
}

/// Runs one session over the link until both sides finish, one fails, or the link is cut.
/// The customer approves the request as soon as it arrives. Errors stay in the sessions
/// (`error()`); the report says what crossed the link.
#[allow(clippy::too_many_arguments)]
pub fn run<
    S1: Store,
    K1: Signer,
    const V: usize,
    const N: usize,
    S2: Store,
    K2: Signer,
    const R: usize,
    const M: usize,
>(
    config: LinkConfig,
    customer: &mut CustomerSession,
    wallet: &mut Wallet<S1, K1, V>,
    trust: &TrustStore<N>,
    revocations: Option<&RevocationList<'_>>,
    merchant: &mut MerchantSession,
    acceptor: &mut Acceptor<S2, K2, R, M>,
    ctx: &Context<'_, N>,
    now: Timestamp,
) -> Result<LinkReport, BleError> {
    let len = chunk_len(config.mtu)?;
    customer.set_mtu(config.mtu)?;
    merchant.set_mtu(config.mtu)?;
    customer.start()?;
    let mut report = LinkReport::default();
    let mut buf = std::vec![0u8; len];
    let delivered = |r: &LinkReport| r.chunks_c2s + r.chunks_s2c;
    loop {
        let mut moved = false;
        while let Some(n) = customer.poll_transmit(&mut buf) {
            if config.cut_after == Some(delivered(&report)) {
                report.cut = true;
                return Ok(report);
            }
            if !moved {
                report.legs += 1;
                report.elapsed += config.latency;
                moved = true;
            }
            report.chunks_c2s += 1;
            report.bytes_c2s += n + 3;
            if merchant.receive(&buf[..n], acceptor, ctx).is_err() {
                return Ok(report);
            }
        }
        let mut moved_back = false;
        while let Some(n) = merchant.poll_transmit(&mut buf) {
            if config.cut_after == Some(delivered(&report)) {
                report.cut = true;
                return Ok(report);
            }
            if !moved_back {
                report.legs += 1;
                report.elapsed += config.latency;
                moved_back = true;
            }
            report.chunks_s2c += 1;
            report.bytes_s2c += n + 3;
            if customer.receive(&buf[..n], wallet).is_err() {
                return Ok(report);
            }
        }
        if customer.pending_request().is_some() {
            customer.approve(wallet, trust, revocations, now)?;
            continue;
        }
        if !(moved || moved_back) || (customer.is_finished() && merchant.is_finished()) {
            return Ok(report);
        }
    }
}
