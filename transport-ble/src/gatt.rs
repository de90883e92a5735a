//! The GATT profile (SPEC §14.2). The service UUID is the session's, from the engagement; the
//! three characteristics have fixed UUIDs.
//!
//! | characteristic | properties | direction |
//! |---|---|---|
//! | State | write without response, notify | either side: `0x01` start, `0x02` end |
//! | Client2Server | write without response, write | customer → merchant chunks |
//! | Server2Client | notify | merchant → customer chunks |
//!
//! The customer (GATT client) subscribes to Server2Client and State (`0x0001` to each one's
//! CCCD), writes State = start, then writes its chunks to Client2Server, with or without
//! response; the merchant (GATT server) notifies its chunks on Server2Client. At the end the
//! merchant notifies State = end after its last chunk, and the customer writes State = end and
//! disconnects first (SPEC §14.6). UUIDs are big-endian here; on the air they are reversed.

/// State characteristic UUID.
pub const STATE_UUID: [u8; 16] = uuid(0x0001);
/// Client2Server characteristic UUID.
pub const CLIENT2SERVER_UUID: [u8; 16] = uuid(0x0002);
/// Server2Client characteristic UUID.
pub const SERVER2CLIENT_UUID: [u8; 16] = uuid(0x0003);

/// State value: the customer starts a session.
pub const STATE_START: u8 = 0x01;
/// State value: the session is over (completed, refused or failed).
pub const STATE_END: u8 = 0x02;

/// `6f666670-6179-4000-8000-00000000XXXX` ("offpay" in ASCII, version-4 layout).
const fn uuid(n: u16) -> [u8; 16] {
    let [hi, lo] = n.to_be_bytes();
    [
        0x6f, 0x66, 0x66, 0x70, 0x61, 0x79, 0x40, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, hi, lo,
    ]
}
