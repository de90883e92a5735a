//! An in-memory link between a [`CustomerSession`] and a [`MerchantSession`], for tests and
//! benchmarks: a chosen ATT MTU, a one-way latency, a cut after N chunks (a customer who walks
//! out of range) and a customer who goes silent after N chunks while staying connected. Time
//! is virtual: nothing sleeps; when both sides wait, the clock jumps to the earlier deadline.
//! Both sides run [`driver::drive`], the loop of every adapter.

use crate::driver::{self, Customer, Link, Merchant};
use crate::session::{CustomerSession, Event, Instant, MerchantSession};
use crate::{BleError, chunk_len};
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::pin;
use core::task::{Context as TaskContext, Poll, Waker};
use core::time::Duration;
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, Signer, Store, Timestamp, TrustStore, Wallet};
use std::collections::VecDeque;
use std::vec::Vec;

/// The link's behaviour.
#[derive(Clone, Copy, Debug)]
pub struct LinkConfig {
    /// The ATT MTU both sides negotiated (23 to 517).
    pub mtu: u16,
    /// One-way latency of each burst of chunks.
    pub latency: Duration,
    /// Drop the link when this many chunks (both directions together) have been delivered:
    /// the next chunk is lost and both sides see the link fail.
    pub cut_after: Option<usize>,
    /// The customer goes silent once it has written this many chunks: it stays connected but
    /// never sends or reads again (a phone put away, a hung app).
    pub customer_silent_after: Option<usize>,
}

impl LinkConfig {
    /// A link at `mtu` with no latency, no cut and no silence.
    pub fn mtu(mtu: u16) -> Self {
        LinkConfig {
            mtu,
            latency: Duration::ZERO,
            cut_after: None,
            customer_silent_after: None,
        }
    }
}

/// What went over the link, and how each side's session ended.
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
    /// Virtual time at the end: one latency per leg, plus any wait up to a deadline.
    pub elapsed: Duration,
    /// Whether the link was cut before the exchange finished.
    pub cut: bool,
    /// The customer session's final event; `None` when the link failed first or the
    /// customer went silent.
    pub customer: Option<Event>,
    /// The merchant session's final event; `None` when the link failed first.
    pub merchant: Option<Event>,
}

impl LinkReport {
    /// Round trips after the hello (legs after the first, halved, rounded up).
    pub fn round_trips_after_handshake(&self) -> usize {
        self.legs.saturating_sub(1).div_ceil(2)
    }
}

/// Why one side's half of the link failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// The link was cut.
    Cut,
    /// The peer ended and left.
    PeerLeft,
}

const CUSTOMER: usize = 0;
const MERCHANT: usize = 1;

/// The air between the two halves.
struct Air {
    config: LinkConfig,
    clock: Cell<Instant>,
    /// Chunks in flight to each side.
    queues: [RefCell<VecDeque<Vec<u8>>>; 2],
    /// Each side's deadline while it waits (cleared every round).
    deadlines: [Cell<Option<Instant>>; 2],
    ended: [Cell<bool>; 2],
    cut: Cell<bool>,
    silent: Cell<bool>,
    /// Chunks moved: the executor's sign that a round did something.
    moved: Cell<usize>,
    last_sender: Cell<Option<usize>>,
    report: RefCell<LinkReport>,
}

impl Air {
    /// The chunks in flight to `side` (0 or 1: a [`Half`]'s side, never another).
    fn queue(&self, side: usize) -> &RefCell<VecDeque<Vec<u8>>> {
        let [customer, merchant] = &self.queues;
        if side == CUSTOMER { customer } else { merchant }
    }
}

struct Half<'a> {
    air: &'a Air,
    side: usize,
}

impl Link for Half<'_> {
    type Error = LinkError;

    fn now(&self) -> Instant {
        self.air.clock.get()
    }

    fn mtu(&self) -> u16 {
        self.air.config.mtu
    }

    async fn send(&mut self, chunk: &[u8]) -> Result<(), LinkError> {
        let air = self.air;
        if air.cut.get() {
            return Err(LinkError::Cut);
        }
        let sent = air.report.borrow().chunks_c2s;
        if self.side == CUSTOMER && air.config.customer_silent_after == Some(sent) {
            air.silent.set(true);
            return core::future::pending().await;
        }
        let mut r = air.report.borrow_mut();
        if air.config.cut_after == Some(r.chunks_c2s + r.chunks_s2c) {
            air.cut.set(true);
            r.cut = true;
            return Err(LinkError::Cut);
        }
        if air.last_sender.replace(Some(self.side)) != Some(self.side) {
            r.legs += 1;
            air.clock.set(air.clock.get() + air.config.latency);
        }
        if self.side == CUSTOMER {
            r.chunks_c2s += 1;
            r.bytes_c2s += chunk.len() + 3;
        } else {
            r.chunks_s2c += 1;
            r.bytes_s2c += chunk.len() + 3;
        }
        air.queue(1 - self.side)
            .borrow_mut()
            .push_back(chunk.to_vec());
        air.moved.set(air.moved.get() + 1);
        Ok(())
    }

    async fn recv(
        &mut self,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<Option<usize>, LinkError> {
        let air = self.air;
        let side = self.side;
        core::future::poll_fn(|_| {
            if side == CUSTOMER && air.silent.get() {
                return Poll::Pending;
            }
            if let Some(chunk) = air.queue(side).borrow_mut().pop_front() {
                let n = driver::copy_chunk(&chunk, buf);
                air.moved.set(air.moved.get() + 1);
                return Poll::Ready(Ok(Some(n)));
            }
            if air.cut.get() {
                return Poll::Ready(Err(LinkError::Cut));
            }
            if air.ended.get(1 - side).is_some_and(Cell::get) {
                return Poll::Ready(Err(LinkError::PeerLeft));
            }
            if deadline.is_some_and(|d| air.clock.get() >= d) {
                return Poll::Ready(Ok(None));
            }
            if let Some(d) = air.deadlines.get(side) {
                d.set(deadline);
            }
            Poll::Pending
        })
        .await
    }

    async fn end(&mut self, _event: &Event) -> Result<(), LinkError> {
        if let Some(e) = self.air.ended.get(self.side) {
            e.set(true);
        }
        self.air.moved.set(self.air.moved.get() + 1);
        Ok(())
    }
}

/// Runs one session over the link until both sides end, the link is cut, or only a silent
/// customer is left. The customer approves the request as soon as it is shown. Each side's
/// final event is in the report.
#[allow(clippy::too_many_arguments)]
pub fn run<
    S1: Store,
    K1: offpay_protocol::crypto::HolderSigner,
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
    chunk_len(config.mtu)?;
    let air = Air {
        config,
        clock: Cell::new(Duration::ZERO),
        queues: Default::default(),
        deadlines: Default::default(),
        ended: Default::default(),
        cut: Cell::new(false),
        silent: Cell::new(false),
        moved: Cell::new(0),
        last_sender: Cell::new(None),
        report: RefCell::new(LinkReport::default()),
    };
    let mut c_end = Customer {
        session: customer,
        wallet,
        trust,
        revocations,
        time: now,
        approve: |_: &[u8]| true,
    };
    let mut m_end = Merchant {
        session: merchant,
        acceptor,
        ctx,
    };
    let (mut c_half, mut m_half) = (
        Half {
            air: &air,
            side: CUSTOMER,
        },
        Half {
            air: &air,
            side: MERCHANT,
        },
    );
    let mut c = pin!(driver::drive(&mut c_end, &mut c_half));
    let mut m = pin!(driver::drive(&mut m_end, &mut m_half));
    let mut cx = TaskContext::from_waker(Waker::noop());
    let (mut c_done, mut m_done) = (None, None);
    loop {
        let before = (air.moved.get(), c_done.is_some(), m_done.is_some());
        for d in &air.deadlines {
            d.set(None);
        }
        if c_done.is_none() {
            if let Poll::Ready(r) = c.as_mut().poll(&mut cx) {
                c_done = Some(r);
            }
        }
        if m_done.is_none() {
            if let Poll::Ready(r) = m.as_mut().poll(&mut cx) {
                m_done = Some(r);
            }
        }
        if c_done.is_some() && m_done.is_some() {
            break;
        }
        if before != (air.moved.get(), c_done.is_some(), m_done.is_some()) {
            continue;
        }
        // Both wait: jump to the earlier deadline, or stop when no one has one (a silent
        // customer is all that is left).
        match air.deadlines.iter().filter_map(Cell::get).min() {
            Some(d) => air.clock.set(air.clock.get().max(d)),
            None => break,
        }
    }
    let mut report = *air.report.borrow();
    report.elapsed = air.clock.get();
    report.customer = c_done.and_then(Result::ok);
    report.merchant = m_done.and_then(Result::ok);
    Ok(report)
}
