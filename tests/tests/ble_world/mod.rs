//! What the in-memory-link tests share: a wallet with a voucher, a merchant with a request and
//! an engagement, one session over the link, and each side's final event.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unused_imports
)]

use offpay_ble::link::{self, LinkConfig, LinkReport};
use offpay_ble::session::{Event, Party, Timeouts};
use offpay_ble::{
    BleError, CustomerSession, Engagement, MAX_FRAME, MerchantEngagement, MerchantSession,
};
use offpay_conformance::fixture::*;
use offpay_protocol::*;

pub type Shop = Acceptor<MemStore, SigningKey>;
pub type Customer = Wallet<MemStore, SigningKey>;

pub struct World {
    pub f: Fixture,
    pub wallet: Customer,
    pub shop: Shop,
    pub engagement: MerchantEngagement,
    pub request: Vec<u8>,
    pub now: Timestamp,
}

impl World {
    pub fn new(amount: u64) -> Self {
        let f = Fixture::new();
        let now = t(3650);
        let mut wallet: Customer =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
        wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
        let mut shop: Shop =
            Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
        let mut rng = Fixture::rng(9);
        let request = shop
            .create_request(Amount(amount), eur(), Some("ble"), now, &mut rng)
            .unwrap()
            .to_vec();
        let engagement = MerchantEngagement::generate(&mut rng);
        World {
            f,
            wallet,
            shop,
            engagement,
            request,
            now,
        }
    }

    /// One session over the link; returns the report and both sessions' results.
    pub fn session(&mut self, config: LinkConfig, seed: u8) -> (LinkReport, Side, Side) {
        let mut customer =
            CustomerSession::new(self.engagement.engagement(), &mut Fixture::rng(seed)).unwrap();
        let mut merchant = MerchantSession::new(&self.engagement, &self.request).unwrap();
        let ctx = Context {
            trust: &self.f.trust,
            revocations: None,
            now: self.now,
        };
        let report = link::run(
            config,
            &mut customer,
            &mut self.wallet,
            &self.f.trust,
            None,
            &mut merchant,
            &mut self.shop,
            &ctx,
            self.now,
        )
        .unwrap();
        (report, Side::of(report.customer), Side::of(report.merchant))
    }

    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.wallet.payments().count(),
            self.wallet
                .payments()
                .filter(|p| p.receipt.is_some())
                .count(),
            self.shop.payments().count(),
            self.shop.store().len(),
        )
    }
}

/// One side's final event, and the error when it failed.
#[derive(Debug)]
pub struct Side {
    pub end: Option<Event>,
    pub error: Option<BleError>,
}

impl Side {
    pub fn of(end: Option<Event>) -> Self {
        let error = match end {
            Some(Event::Failed(e)) => Some(e),
            _ => None,
        };
        Side { end, error }
    }
}

/// A session's final event, taken from its events (`None` when it has none, or it was taken).
pub trait Ends {
    fn end(&mut self) -> Option<Event>;
}

impl Ends for MerchantSession {
    fn end(&mut self) -> Option<Event> {
        std::iter::from_fn(|| self.poll_event()).find(Event::is_final)
    }
}

impl Ends for CustomerSession {
    fn end(&mut self) -> Option<Event> {
        std::iter::from_fn(|| self.poll_event()).find(Event::is_final)
    }
}
