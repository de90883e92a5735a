//! The customer side as a BLE central on btleplug (feature `btleplug`): for apps on Linux
//! (BlueZ), macOS, Windows, Android and iOS.
//!
//! [`pay`] scans for the session's service UUID, connects, discovers the offpay
//! characteristics, subscribes to Server2Client and State, writes State = start, then runs a
//! [`CustomerSession`] over the link with [`driver::drive`] to its final event. All protocol
//! logic, timeouts included (SPEC §14.7), stays in the sans-IO core; this module only does IO.
//!
//! btleplug exposes no ATT MTU on every platform, so the session chunks for the smallest MTU
//! (23) unless the caller knows better ([`Options::mtu`]), and takes the merchant's chunks at
//! any MTU the platform may have negotiated (up to 517): always correct, at worst more chunks.

use crate::Engagement;
use crate::driver::{self, AdapterError, Customer, Link};
use crate::gatt::{CLIENT2SERVER_UUID, SERVER2CLIENT_UUID, STATE_END, STATE_START, STATE_UUID};
use crate::session::{CustomerSession, Event, Instant};
use btleplug::api::{
    Central as _, CentralEvent, Characteristic, Peripheral as _, ScanFilter, WriteType,
};
use btleplug::platform::{Adapter, Peripheral};
use core::time::Duration;
use futures::StreamExt;
use futures::stream::BoxStream;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Store, Timestamp, TrustStore, Wallet};
use rand_core::CryptoRngCore;
use std::vec;
use uuid::Uuid;

/// Why a payment over btleplug did not complete (the host failure is btleplug's).
pub type CentralError = AdapterError<btleplug::Error>;

impl From<btleplug::Error> for CentralError {
    fn from(e: btleplug::Error) -> Self {
        Self::Host(e)
    }
}

/// How long to look, and the MTU to chunk for. The exchange's own limits are the session's
/// (SPEC §14.7).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Scanning gives up after this long.
    pub scan_timeout: Duration,
    /// The ATT MTU to chunk for (23 when unknown).
    pub mtu: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scan_timeout: Duration::from_secs(15),
            mtu: crate::MIN_MTU,
        }
    }
}

const DAY: Duration = Duration::from_secs(86_400);

/// How long the customer waits for the merchant's State = end (SPEC §14.6).
const END_WAIT: Duration = Duration::from_secs(2);

fn uuid(b: &[u8; 16]) -> Uuid {
    Uuid::from_bytes(*b)
}

/// Finds the merchant advertising `service` and connects to it.
pub async fn connect(
    adapter: &Adapter,
    service: &[u8; 16],
    timeout: Duration,
) -> Result<Peripheral, CentralError> {
    let service = uuid(service);
    let mut events = adapter.events().await?;
    adapter
        .start_scan(ScanFilter {
            services: vec![service],
        })
        .await?;
    let found = tokio::time::timeout(timeout, async {
        while let Some(event) = events.next().await {
            let id = match event {
                CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) => id,
                CentralEvent::ServicesAdvertisement { id, services }
                    if services.contains(&service) =>
                {
                    id
                }
                _ => continue,
            };
            let Ok(p) = adapter.peripheral(&id).await else {
                continue;
            };
            if let Ok(Some(props)) = p.properties().await {
                if props.services.contains(&service) {
                    return Some(p);
                }
            }
        }
        None
    })
    .await;
    let _ = adapter.stop_scan().await;
    let p = found.ok().flatten().ok_or(CentralError::NotFound)?;
    p.connect().await?;
    p.discover_services().await?;
    Ok(p)
}

fn characteristic(
    p: &Peripheral,
    service: &[u8; 16],
    id: &[u8; 16],
) -> Result<Characteristic, CentralError> {
    p.characteristics()
        .into_iter()
        .find(|c| c.service_uuid == uuid(service) && c.uuid == uuid(id))
        .ok_or(CentralError::MissingCharacteristic)
}

/// Pays the merchant of `engagement` over BLE. `approve` sees the merchant's request bytes
/// (decode them to show amount and merchant) and says whether to pay. Returns the session's
/// final event; on [`CentralError::Disconnected`] call again with the same engagement to
/// resume.
#[allow(clippy::too_many_arguments)]
pub async fn pay<
    S: Store,
    K: offpay_protocol::crypto::HolderSigner,
    const V: usize,
    const N: usize,
>(
    adapter: &Adapter,
    engagement: &Engagement,
    wallet: &mut Wallet<S, K, V>,
    trust: &TrustStore<N>,
    revocations: Option<&RevocationList<'_>>,
    now: Timestamp,
    rng: &mut impl CryptoRngCore,
    approve: impl FnMut(&[u8]) -> bool,
    options: Options,
) -> Result<Event, CentralError> {
    let service = engagement.service_uuid;
    let mut session = CustomerSession::new(engagement, rng)?;
    let p = connect(adapter, &service, options.scan_timeout).await?;
    let setup = async {
        let c2s = characteristic(&p, &service, &CLIENT2SERVER_UUID)?;
        let s2c = characteristic(&p, &service, &SERVER2CLIENT_UUID)?;
        let state = characteristic(&p, &service, &STATE_UUID)?;
        let notifications = p.notifications().await?;
        p.subscribe(&s2c).await?;
        p.subscribe(&state).await?;
        p.write(&state, &[STATE_START], WriteType::WithoutResponse)
            .await?;
        Ok::<_, CentralError>(CentralLink {
            p: &p,
            c2s,
            state,
            notifications,
            mtu: options.mtu,
            merchant_ended: false,
            origin: tokio::time::Instant::now(),
        })
    };
    let mut link = match setup.await {
        Ok(link) => link,
        Err(e) => {
            // Connected but not usable: leave rather than hold the merchant's link.
            let _ = p.disconnect().await;
            return Err(e);
        }
    };
    let mut endpoint = Customer {
        session: &mut session,
        wallet,
        trust,
        revocations,
        time: now,
        approve,
    };
    let result = driver::drive(&mut endpoint, &mut link).await;
    if result.is_err() {
        // The driver ends the link with the session's final event; after a link error there
        // is none, and only the connection to drop.
        let _ = p.disconnect().await;
    }
    result
}

/// The customer's end of a btleplug connection.
struct CentralLink<'a> {
    p: &'a Peripheral,
    c2s: Characteristic,
    state: Characteristic,
    notifications: BoxStream<'static, btleplug::api::ValueNotification>,
    mtu: u16,
    /// Whether the merchant's State = end arrived.
    merchant_ended: bool,
    origin: tokio::time::Instant,
}

impl Link for CentralLink<'_> {
    type Error = CentralError;

    fn now(&self) -> Instant {
        self.origin.elapsed()
    }

    fn mtu(&self) -> u16 {
        self.mtu
    }

    /// The platform may have negotiated any MTU: the merchant's chunks may be up to 514 bytes.
    fn receive_mtu(&self) -> u16 {
        517
    }

    async fn send(&mut self, chunk: &[u8]) -> Result<(), CentralError> {
        Ok(self
            .p
            .write(&self.c2s, chunk, WriteType::WithResponse)
            .await?)
    }

    async fn recv(
        &mut self,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<Option<usize>, CentralError> {
        // No deadline: a day, far past any session's limit (SPEC §14.7).
        let at = self.origin + deadline.unwrap_or(self.origin.elapsed() + DAY);
        while let Ok(next) = tokio::time::timeout_at(at, self.notifications.next()).await {
            let n = next.ok_or(CentralError::Disconnected)?;
            if n.uuid == uuid(&SERVER2CLIENT_UUID) {
                return Ok(Some(crate::driver::copy_chunk(&n.value, buf)));
            }
            if n.uuid == uuid(&STATE_UUID) && n.value.first() == Some(&STATE_END) {
                self.merchant_ended = true;
                return Err(CentralError::Disconnected);
            }
        }
        Ok(None)
    }

    async fn end(&mut self, _event: &Event) -> Result<(), CentralError> {
        // SPEC §14.6: wait up to 2 s for the merchant's State = end, then leave first.
        if !self.merchant_ended {
            let _ = tokio::time::timeout(END_WAIT, async {
                while let Some(n) = self.notifications.next().await {
                    if n.uuid == uuid(&STATE_UUID) && n.value.first() == Some(&STATE_END) {
                        break;
                    }
                }
            })
            .await;
        }
        let _ = self
            .p
            .write(&self.state, &[STATE_END], WriteType::WithoutResponse)
            .await;
        let _ = self.p.disconnect().await;
        Ok(())
    }
}
