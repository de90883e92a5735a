//! Both roles on trouble-host (feature `trouble`), over any bt-hci controller: the merchant as
//! a GATT server that advertises the session's service UUID ([`merchant`]), the customer as a
//! GATT client ([`customer`]). `no_std`; all protocol logic stays in the sans-IO sessions.
//!
//! UUIDs: the GATT profile's UUIDs are written big-endian, as text; on the air (and in
//! trouble-host's `Uuid::new_long`) 128-bit UUIDs are little-endian, so they are reversed here.

use crate::MAX_FRAME;
use crate::driver::{self, AdapterError, Customer, Link, Merchant};
use crate::gatt::{CLIENT2SERVER_UUID, SERVER2CLIENT_UUID, STATE_END, STATE_START, STATE_UUID};
use crate::session::{Event, Instant};
use core::cell::Cell;
use core::task::Poll;
use embassy_futures::poll_once;
use embassy_futures::select::{Either, Either3, select, select3};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_time::{Duration as EmbassyDuration, Instant as EmbassyInstant, Timer, with_timeout};
use offpay_protocol::{Signer, Store};
use trouble_host::prelude::*;

/// Attributes in the merchant's table: GAP (3), GATT (1), the offpay service (1 + 3 × 3).
const ATTRIBUTES: usize = 20;

/// What failed below the session on trouble-host.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostError {
    /// The host stack failed.
    Stack(trouble_host::Error),
    /// The controller failed.
    Controller,
}

/// Why a session over trouble-host did not complete.
pub type TroubleError = AdapterError<HostError>;

impl From<trouble_host::Error> for TroubleError {
    fn from(e: trouble_host::Error) -> Self {
        Self::Host(HostError::Stack(e))
    }
}

impl<E> From<BleHostError<E>> for TroubleError {
    fn from(e: BleHostError<E>) -> Self {
        match e {
            BleHostError::BleHost(e) => Self::Host(HostError::Stack(e)),
            BleHostError::Controller(_) => Self::Host(HostError::Controller),
        }
    }
}

/// A profile UUID (big-endian, as written) in trouble-host's on-air byte order.
pub fn air_uuid(uuid: &[u8; 16]) -> Uuid {
    let mut b = *uuid;
    b.reverse();
    Uuid::new_long(b)
}

/// How long the merchant waits, after notifying State = end, for the customer to disconnect
/// before it drops the link itself (SPEC §14.6).
pub const MERCHANT_END_WAIT: core::time::Duration = core::time::Duration::from_secs(5);
/// How long the customer waits, after its final event, for the merchant's State = end before
/// it writes its own and disconnects (SPEC §14.6).
pub const CUSTOMER_END_WAIT: core::time::Duration = core::time::Duration::from_secs(2);

/// How the customer writes Client2Server chunks (SPEC §14.2 allows both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// ATT Write Request: each chunk waits for the merchant's response.
    WithResponse,
    /// ATT Write Command: chunks back to back, as phones write for throughput.
    WithoutResponse,
}

fn embassy(d: core::time::Duration) -> EmbassyDuration {
    EmbassyDuration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn since(origin: EmbassyInstant) -> Instant {
    core::time::Duration::from_micros(origin.elapsed().as_micros())
}

/// The merchant's side: advertises `service_uuid` (the engagement's) in the advertising data
/// as the complete list of 128-bit service UUIDs, accepts one connection, and runs the
/// session from the connection on (its clock starts there) to its final event, which it
/// returns. Serve the next customer by calling it again with a new [`MerchantSession`]
/// (the same request for a reconnecting customer, a new one for the next).
///
/// [`MerchantSession`]: crate::MerchantSession
pub async fn merchant<'s, C, S, K, const R: usize, const M: usize, const N: usize>(
    peripheral: &mut Peripheral<'s, C, DefaultPacketPool>,
    service_uuid: &[u8; 16],
    endpoint: &mut Merchant<'_, S, K, R, M, N>,
) -> Result<Event, TroubleError>
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
    .map_err(|_| TroubleError::from(trouble_host::Error::InsufficientSpace))?;
    let advertiser = peripheral
        .advertise(
            &Default::default(),
            Advertisement::ConnectableScannableUndirected {
                adv_data: adv.get(..len).unwrap_or_default(),
                scan_data: &[],
            },
        )
        .await?;
    let conn = advertiser.accept().await?.with_attribute_server(&server)?;
    let mut link = ServerLink {
        conn: &conn,
        state: &state,
        s2c: &s2c,
        c2s: c2s.handle,
        origin: EmbassyInstant::now(),
    };
    driver::drive(endpoint, &mut link).await
}

/// The merchant's end of a connection.
struct ServerLink<'a, 'st, 'sv, S2c: AsGatt> {
    conn: &'a GattConnection<'st, 'sv, DefaultPacketPool>,
    state: &'a Characteristic<[u8; 1]>,
    s2c: &'a Characteristic<S2c>,
    c2s: u16,
    origin: EmbassyInstant,
}

impl<S2c: AsGatt> Link for ServerLink<'_, '_, '_, S2c> {
    type Error = TroubleError;

    fn now(&self) -> Instant {
        since(self.origin)
    }

    fn mtu(&self) -> u16 {
        self.conn.raw().att_mtu()
    }

    async fn send(&mut self, chunk: &[u8]) -> Result<(), TroubleError> {
        Ok(self.s2c.notify_raw(self.conn, chunk, false).await?)
    }

    async fn recv(
        &mut self,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<Option<usize>, TroubleError> {
        loop {
            let next = match deadline {
                Some(d) => {
                    let at = self.origin + embassy(d);
                    match select(self.conn.next(), Timer::at(at)).await {
                        Either::First(e) => e,
                        Either::Second(()) => return Ok(None),
                    }
                }
                None => self.conn.next().await,
            };
            let event = match next {
                GattConnectionEvent::Disconnected { .. } => return Err(TroubleError::Disconnected),
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
            let mut n = 0;
            let mut end = false;
            write.with_data(|_, data| {
                if handle == self.c2s {
                    n = data.len().min(buf.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                } else if handle == self.state.handle {
                    end = data.first() == Some(&STATE_END);
                }
                true
            });
            if let Ok(reply) = write.accept() {
                reply.send().await;
            }
            if handle == self.c2s {
                return Ok(Some(n));
            }
            if end {
                // The customer gave up before the session ended.
                return Err(TroubleError::Disconnected);
            }
            // State = start: the session's clock runs from the connection already.
        }
    }

    async fn end(&mut self, _event: &Event) -> Result<(), TroubleError> {
        self.state
            .notify_raw(self.conn, &[STATE_END], false)
            .await?;
        // The customer disconnects once it has State = end; keeping the link until then is
        // what lets the notification leave before the disconnection.
        let _ = with_timeout(embassy(MERCHANT_END_WAIT), async {
            loop {
                match self.conn.next().await {
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
        Ok(())
    }
}

/// How a customer's session over trouble-host ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomerReport {
    /// The session's final event.
    pub event: Event,
    /// Whether the merchant's State = end arrived before the customer left.
    pub merchant_ended: bool,
    /// The ATT MTU the session ran at.
    pub mtu: u16,
}

/// The customer's side: connects to the merchant at `address` (found by scanning for the
/// engagement's service UUID), discovers the offpay service, subscribes to Server2Client and
/// State, writes State = start and runs the session with `write` chunks to its final event.
/// The pool `P` sets the ATT MTU the customer asks for (`P::MTU` − 4).
pub async fn customer<'s, C, P, S, K, const V: usize, const N: usize, F>(
    stack: &Stack<'_, C, P>,
    central: &mut Central<'s, C, P>,
    address: Address,
    endpoint: &mut Customer<'_, S, K, V, N, F>,
    write: WriteMode,
) -> Result<CustomerReport, TroubleError>
where
    C: Controller,
    P: PacketPool,
    S: Store,
    K: offpay_protocol::crypto::HolderSigner,
    F: FnMut(&[u8]) -> bool,
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
    let client = GattClient::<C, P, 4>::new(stack, &conn).await?;
    let service_uuid = endpoint.session.engagement().service_uuid;
    let ended_with = Cell::new(None);
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
        let chunks = client.subscribe(&s2c, false).await?;
        let states = client.subscribe(&state, false).await?;
        client
            .write_characteristic_without_response(&state, &[STATE_START])
            .await?;
        let mut link = ClientLink {
            client: &client,
            conn: &conn,
            state: &state,
            c2s: &c2s,
            chunks,
            states,
            write,
            merchant_ended: false,
            ended_with: &ended_with,
            origin: EmbassyInstant::now(),
        };
        let event = driver::drive(endpoint, &mut link).await?;
        Ok(CustomerReport {
            event,
            merchant_ended: link.merchant_ended,
            mtu: conn.att_mtu(),
        })
    };
    match select(client.task(), exchange).await {
        Either::Second(r) => r,
        // The link dropped while the customer took its leave: the session had ended.
        Either::First(r) => match ended_with.get() {
            Some(event) => Ok(CustomerReport {
                event,
                merchant_ended: false,
                mtu: conn.att_mtu(),
            }),
            None => {
                r?;
                Err(TroubleError::Disconnected)
            }
        },
    }
}

/// The customer's end of a connection.
struct ClientLink<'a, 'c, C: Controller, P: PacketPool, const L: usize> {
    client: &'a GattClient<'c, C, P, 4>,
    conn: &'a Connection<'c, P>,
    state: &'a Characteristic<[u8]>,
    c2s: &'a Characteristic<[u8]>,
    chunks: NotificationListener<'a, L>,
    states: NotificationListener<'a, L>,
    write: WriteMode,
    merchant_ended: bool,
    ended_with: &'a Cell<Option<Event>>,
    origin: EmbassyInstant,
}

impl<C: Controller, P: PacketPool, const L: usize> Link for ClientLink<'_, '_, C, P, L> {
    type Error = TroubleError;

    fn now(&self) -> Instant {
        since(self.origin)
    }

    fn mtu(&self) -> u16 {
        self.conn.att_mtu()
    }

    async fn send(&mut self, chunk: &[u8]) -> Result<(), TroubleError> {
        match self.write {
            WriteMode::WithResponse => self.client.write_characteristic(self.c2s, chunk).await?,
            WriteMode::WithoutResponse => {
                self.client
                    .write_characteristic_without_response(self.c2s, chunk)
                    .await?
            }
        }
        Ok(())
    }

    async fn recv(
        &mut self,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<Option<usize>, TroubleError> {
        let at = deadline.map_or(EmbassyInstant::MAX, |d| self.origin + embassy(d));
        loop {
            if self.merchant_ended {
                // State = end follows the merchant's last chunk: take a chunk already queued,
                // else the merchant has left.
                return match poll_once(self.chunks.next()) {
                    Poll::Ready(n) => Ok(Some(driver::copy_chunk(n.as_ref(), buf))),
                    Poll::Pending => Err(TroubleError::Disconnected),
                };
            }
            // Both listeners share one queue: each must keep up with it.
            match select3(self.states.next(), self.chunks.next(), Timer::at(at)).await {
                Either3::First(s) => self.merchant_ended = s.as_ref().first() == Some(&STATE_END),
                Either3::Second(n) => return Ok(Some(driver::copy_chunk(n.as_ref(), buf))),
                Either3::Third(()) => return Ok(None),
            }
        }
    }

    async fn end(&mut self, event: &Event) -> Result<(), TroubleError> {
        // Known before the leave-taking: a link that drops now cannot hide it.
        self.ended_with.set(Some(*event));
        if !self.merchant_ended {
            if let Ok(s) = with_timeout(embassy(CUSTOMER_END_WAIT), self.states.next()).await {
                self.merchant_ended = s.as_ref().first() == Some(&STATE_END);
            }
        }
        let _ = self
            .client
            .write_characteristic_without_response(self.state, &[STATE_END])
            .await;
        self.conn.disconnect();
        Ok(())
    }
}
