//! Both roles on trouble-host (feature `trouble`), over any bt-hci controller: the merchant as
//! a GATT server that advertises the session's service UUID ([`merchant`]), the customer as a
//! GATT client ([`customer`]). `no_std`; all protocol logic stays in the sans-IO sessions.
//!
//! UUIDs: the GATT profile's UUIDs are written big-endian, as text; on the air (and in
//! trouble-host's `Uuid::new_long`) 128-bit UUIDs are little-endian, so they are reversed here.

use crate::gatt::{CLIENT2SERVER_UUID, SERVER2CLIENT_UUID, STATE_END, STATE_START, STATE_UUID};
use crate::session::{CustomerOutcome, CustomerSession, MerchantOutcome, MerchantSession};
use crate::{BleError, MAX_FRAME};
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, Signer, Store, Timestamp, TrustStore, Wallet};
use trouble_host::prelude::*;

/// Attributes in the merchant's table: GAP (3), GATT (1), the offpay service (1 + 3 × 3).
const ATTRIBUTES: usize = 20;

/// Why a session over trouble-host did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum TroubleError {
    /// The session failed (typed, with its SPEC code).
    Ble(BleError),
    /// The host stack failed.
    Host(trouble_host::Error),
    /// The controller failed.
    Controller,
    /// The peer's GATT service lacks an offpay characteristic.
    MissingCharacteristic,
    /// The link dropped before the session finished; a new session resumes the exchange.
    Disconnected,
}

impl core::fmt::Display for TroubleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ble(e) => write!(f, "BLE session failed: {e}"),
            Self::Host(e) => write!(f, "BLE host: {e:?}"),
            Self::Controller => f.write_str("BLE controller error"),
            Self::MissingCharacteristic => f.write_str("the offpay service is incomplete"),
            Self::Disconnected => f.write_str("the link dropped before the payment finished"),
        }
    }
}

impl From<BleError> for TroubleError {
    fn from(e: BleError) -> Self {
        Self::Ble(e)
    }
}

impl From<trouble_host::Error> for TroubleError {
    fn from(e: trouble_host::Error) -> Self {
        Self::Host(e)
    }
}

impl<E> From<BleHostError<E>> for TroubleError {
    fn from(e: BleHostError<E>) -> Self {
        match e {
            BleHostError::BleHost(e) => Self::Host(e),
            BleHostError::Controller(_) => Self::Controller,
        }
    }
}

/// A profile UUID (big-endian, as written) in trouble-host's on-air byte order.
pub fn air_uuid(uuid: &[u8; 16]) -> Uuid {
    let mut b = *uuid;
    b.reverse();
    Uuid::new_long(b)
}

/// The merchant's side: advertises `service_uuid` (the engagement's), accepts one connection,
/// and runs `session` until it is finished or the link drops. Returns the session's outcome.
/// Call again with a new [`MerchantSession`] (same request) to serve a reconnecting customer.
pub async fn merchant<'s, C, S, K, const R: usize, const M: usize, const N: usize>(
    peripheral: &mut Peripheral<'s, C, DefaultPacketPool>,
    service_uuid: &[u8; 16],
    session: &mut MerchantSession,
    acceptor: &mut Acceptor<S, K, R, M>,
    ctx: &Context<'_, N>,
) -> Result<MerchantOutcome, TroubleError>
where
    C: Controller,
    S: Store,
    K: Signer,
{
    let mut state_store = [0u8; 1];
    let mut c2s_store = [0u8; MAX_FRAME];
    let mut s2c_store = [0u8; MAX_FRAME];
    let mut table: AttributeTable<'_, NoopRawMutex, ATTRIBUTES> = AttributeTable::new();
    let mut gap = table.add_service(Service::new(0x1800u16));
    let _ = gap.add_characteristic_ro(0x2a00u16, b"offpay");
    gap.build();
    table.add_service(Service::new(0x1801u16));
    let mut svc = table.add_service(Service::new(air_uuid(service_uuid)));
    let state = svc
        .add_characteristic(
            air_uuid(&STATE_UUID),
            [
                CharacteristicProp::WriteWithoutResponse,
                CharacteristicProp::Notify,
            ],
            [0u8; 1],
            &mut state_store[..],
        )
        .build();
    let c2s = svc
        .add_characteristic(
            air_uuid(&CLIENT2SERVER_UUID),
            [
                CharacteristicProp::Write,
                CharacteristicProp::WriteWithoutResponse,
            ],
            heapless09::Vec::<u8, MAX_FRAME>::new(),
            &mut c2s_store[..],
        )
        .build();
    let s2c = svc
        .add_characteristic(
            air_uuid(&SERVER2CLIENT_UUID),
            [CharacteristicProp::Notify],
            heapless09::Vec::<u8, MAX_FRAME>::new(),
            &mut s2c_store[..],
        )
        .build();
    svc.build();
    let server = AttributeServer::<NoopRawMutex, DefaultPacketPool, ATTRIBUTES, 1>::new(table);

    let mut adv = [0u8; 31];
    let mut air = *service_uuid;
    air.reverse();
    let len = AdStructure::encode_slice(
        &[
            AdStructure::Flags(LE_GENERAL_DISCOVERABLE | BR_EDR_NOT_SUPPORTED),
            AdStructure::CompleteServiceUuids128(&[air]),
        ],
        &mut adv[..],
    )
    .map_err(|_| TroubleError::Host(trouble_host::Error::InsufficientSpace))?;
    let advertiser = peripheral
        .advertise(
            &Default::default(),
            Advertisement::ConnectableScannableUndirected {
                adv_data: &adv[..len],
                scan_data: &[],
            },
        )
        .await?;
    let conn = advertiser.accept().await?.with_attribute_server(&server)?;
    let mut chunk = [0u8; 517];
    loop {
        let event = match conn.next().await {
            GattConnectionEvent::Disconnected { .. } => {
                return session.outcome().ok_or(TroubleError::Disconnected);
            }
            GattConnectionEvent::Gatt { event } => event,
            _ => continue,
        };
        let GattEvent::Write(write) = event else {
            if let Ok(reply) = event.accept() {
                reply.send().await;
            }
            continue;
        };
        let handle = write.handle();
        let mut received = heapless09::Vec::<u8, 517>::new();
        write.with_data(|_, data| received.extend_from_slice(data).is_ok());
        if let Ok(reply) = write.accept() {
            reply.send().await;
        }
        if handle == c2s.handle {
            session.set_mtu(conn.raw().att_mtu())?;
            let r = session.receive(&received, acceptor, ctx);
            while let Some(n) = session.poll_transmit(&mut chunk) {
                s2c.notify_raw(&conn, &chunk[..n], false).await?;
            }
            if let Err(e) = r {
                let _ = state.notify_raw(&conn, &[STATE_END], false).await;
                return Err(e.into());
            }
            if session.is_finished() {
                let _ = state.notify_raw(&conn, &[STATE_END], false).await;
                // Give the customer a moment to take the last notification and say goodbye
                // (State = end or a disconnect); the outcome is decided either way.
                let _ = embassy_time::with_timeout(embassy_time::Duration::from_secs(2), async {
                    loop {
                        match conn.next().await {
                            GattConnectionEvent::Disconnected { .. } => break,
                            GattConnectionEvent::Gatt { event } => {
                                if let Ok(reply) = event.accept() {
                                    reply.send().await;
                                }
                            }
                            _ => {}
                        }
                    }
                })
                .await;
                return session.outcome().ok_or(TroubleError::Disconnected);
            }
        } else if handle == state.handle && received.first() == Some(&STATE_END) {
            // The customer is done (or gave up): this connection's session is over.
            return session.outcome().ok_or(TroubleError::Disconnected);
        }
    }
}

/// The customer's side: connects to the merchant at `address` (found by scanning for the
/// engagement's service UUID), discovers the offpay service, and runs `session`. `approve`
/// sees the request bytes and says whether to pay.
#[allow(clippy::too_many_arguments)]
pub async fn customer<'s, C, S, K, const V: usize, const N: usize>(
    stack: &Stack<'_, C, DefaultPacketPool>,
    central: &mut Central<'s, C, DefaultPacketPool>,
    address: Address,
    session: &mut CustomerSession,
    wallet: &mut Wallet<S, K, V>,
    trust: &TrustStore<N>,
    revocations: Option<&RevocationList<'_>>,
    now: Timestamp,
    mut approve: impl FnMut(&[u8]) -> bool,
) -> Result<CustomerOutcome, TroubleError>
where
    C: Controller,
    S: Store,
    K: Signer,
{
    let config = ConnectConfig {
        connect_params: Default::default(),
        scan_config: ScanConfig {
            active: true,
            filter_accept_list: &[address],
            ..Default::default()
        },
    };
    let conn = central.connect(&config).await?;
    let client = GattClient::<C, DefaultPacketPool, 4>::new(stack, &conn).await?;
    let service_uuid = session.engagement().service_uuid;
    let exchange = async {
        let services = client.services_by_uuid(&air_uuid(&service_uuid)).await?;
        let service = services
            .first()
            .ok_or(TroubleError::MissingCharacteristic)?
            .clone();
        let state: Characteristic<[u8]> = client
            .characteristic_by_uuid(&service, &air_uuid(&STATE_UUID))
            .await?;
        let c2s: Characteristic<[u8]> = client
            .characteristic_by_uuid(&service, &air_uuid(&CLIENT2SERVER_UUID))
            .await?;
        let s2c: Characteristic<[u8]> = client
            .characteristic_by_uuid(&service, &air_uuid(&SERVER2CLIENT_UUID))
            .await?;
        let mut listener = client.subscribe(&s2c, false).await?;
        session.set_mtu(conn.att_mtu())?;
        client
            .write_characteristic_without_response(&state, &[STATE_START])
            .await?;
        session.start()?;
        let mut chunk = [0u8; 517];
        loop {
            while let Some(n) = session.poll_transmit(&mut chunk) {
                client.write_characteristic(&c2s, &chunk[..n]).await?;
            }
            if let Some(request) = session.pending_request() {
                if approve(request) {
                    session.approve(wallet, trust, revocations, now)?;
                } else {
                    session.decline()?;
                }
                continue;
            }
            if session.is_finished() {
                let _ = client
                    .write_characteristic_without_response(&state, &[STATE_END])
                    .await;
                conn.disconnect();
                return session.outcome().ok_or(TroubleError::Disconnected);
            }
            let notification = listener.next().await;
            session.receive(notification.as_ref(), wallet)?;
        }
    };
    match select(client.task(), exchange).await {
        Either::First(r) => {
            r?;
            Err(TroubleError::Disconnected)
        }
        Either::Second(r) => r,
    }
}
