//! A till that is never online syncs through its customers' phones (SPEC §8.4.1).
//!
//! The till shows its sync batch as animated QR frames ([`MerchantTill::relay_frames`]); a
//! customer's wallet scans it and keeps it ([`CustomerWallet::carry_batch`]), uploads it with
//! its own next sync, and keeps the issuer's signed report ([`CustomerWallet::relay_reports`])
//! until it next meets the till, which verifies the report and prunes what it acknowledges
//! ([`MerchantTill::receive_report`]). Everything carried is signed by its author: the phone
//! can drop or delay a batch or a report, not change one.

use crate::error::{Doing, client};
use crate::files::{DeviceDir, read_capped, write_atomic};
use crate::sync::{SYNC_BATCH_MAX, SYNC_REPORT_MAX, SyncSummary};
use crate::{CustomerWallet, Error, MerchantTill};
use offpay_issuer::client::Client;
use offpay_protocol::crypto::sha256;
use offpay_protocol::decode_unsigned;
use offpay_protocol::msg::SyncBatch;

/// The most tills' batches a wallet carries at once.
pub const MAX_CARRIED: usize = 16;

/// A till's report waiting in a wallet to be shown to the till.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayReport {
    /// The batch it answers (hex SHA-256 of the batch).
    pub batch_id: String,
    /// The issuer's signed report.
    pub report: Vec<u8>,
}

const DIR: &str = "relay";

fn relay_dir(dir: &DeviceDir) -> std::path::PathBuf {
    dir.file(DIR)
}

/// The carried batches, oldest first: (id, whether the issuer's report is held).
fn carried(dir: &DeviceDir) -> Result<Vec<(String, bool)>, Error> {
    let d = relay_dir(dir);
    if !d.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(&d).map_err(|e| Error::io("reading the relay directory", &e))? {
        let e = e.map_err(|e| Error::io("reading the relay directory", &e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".batch")
            && id.len() == 64
            && id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let answered = d.join(format!("{id}.report")).exists();
            let at = e.metadata().and_then(|m| m.modified()).ok();
            out.push((at, id.to_string(), answered));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, id, a)| (id, a)).collect())
}

fn check_id(batch_id: &str) -> Result<(), Error> {
    if batch_id.len() == 64 && batch_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::invalid(format!("'{batch_id}' is not a batch id")))
    }
}

impl CustomerWallet {
    /// Keeps a till's sync batch (read from its animated QR frames with
    /// [`crate::qr::Receiver`]) to upload with this wallet's next sync; returns its id. The same
    /// batch again is kept once. At most [`MAX_CARRIED`] batches wait at once.
    pub fn carry_batch(&self, batch: &[u8]) -> Result<String, Error> {
        if batch.len() > SYNC_BATCH_MAX {
            return Err(Error::invalid("this is larger than any sync batch"));
        }
        let n = decode_unsigned::<SyncBatch<'_>>(batch)
            .doing("reading the till's sync batch")?
            .len();
        if n == 0 {
            return Err(Error::invalid("the till's sync batch is empty"));
        }
        let id = hex::encode(sha256(batch));
        let dir = self.device_dir();
        let held = carried(dir)?;
        if held.iter().any(|(h, _)| *h == id) {
            return Ok(id);
        }
        if held.len() >= MAX_CARRIED {
            // The oldest batch already answered makes room: its till shows its records again
            // to the next customer, and the issuer calls them duplicates.
            match held.iter().find(|(_, answered)| *answered) {
                Some((old, _)) => self.forget_relay(old)?,
                None => {
                    return Err(Error::device(format!(
                        "this wallet carries {MAX_CARRIED} tills' batches the issuer has not \
                         seen; sync first"
                    )));
                }
            }
        }
        let d = relay_dir(dir);
        std::fs::create_dir_all(&d).map_err(|e| Error::io("creating the relay directory", &e))?;
        write_atomic(&d.join(format!("{id}.batch")), batch)?;
        Ok(id)
    }

    /// Uploads every carried batch the issuer has not answered yet and keeps its report. Each
    /// batch on its own: one that fails is reported in `summary.incomplete` and tried again by
    /// the next sync.
    pub(crate) fn upload_carried(&self, issuer: &Client, summary: &mut SyncSummary) {
        let dir = self.device_dir();
        let d = relay_dir(dir);
        let held = match carried(dir) {
            Ok(h) => h,
            Err(e) => return summary.incomplete.push(e.to_string()),
        };
        for (id, answered) in held {
            if answered {
                continue;
            }
            let upload = || -> Result<u32, Error> {
                let batch = read_capped(
                    &d.join(format!("{id}.batch")),
                    SYNC_BATCH_MAX,
                    "reading a carried batch",
                )?;
                let n = decode_unsigned::<SyncBatch<'_>>(&batch)
                    .doing("reading a carried batch")?
                    .len();
                let report = issuer
                    .sync(&batch)
                    .map_err(|e| client("syncing a till's batch", e))?;
                // The report is the till's to verify and apply; here it is only kept.
                write_atomic(&d.join(format!("{id}.report")), &report)?;
                Ok(u32::try_from(n).unwrap_or(u32::MAX))
            };
            match upload() {
                Ok(n) => {
                    summary.relayed_batches += 1;
                    summary.relayed_records += n;
                }
                Err(e) => summary.incomplete.push(format!("batch {id}: {e}")),
            }
        }
    }

    /// The carried batches the issuer has not answered yet (their ids).
    pub fn carried_batches(&self) -> Result<Vec<String>, Error> {
        Ok(carried(self.device_dir())?
            .into_iter()
            .filter(|(_, answered)| !answered)
            .map(|(id, _)| id)
            .collect())
    }

    /// The issuer's reports on carried batches, to show to their tills (as animated QR frames:
    /// [`crate::qr::animate`]).
    pub fn relay_reports(&self) -> Result<Vec<RelayReport>, Error> {
        let dir = self.device_dir();
        let d = relay_dir(dir);
        let mut out = Vec::new();
        for (id, answered) in carried(dir)? {
            if answered {
                let report = read_capped(
                    &d.join(format!("{id}.report")),
                    SYNC_REPORT_MAX,
                    "reading a relayed report",
                )?;
                out.push(RelayReport {
                    batch_id: id,
                    report,
                });
            }
        }
        Ok(out)
    }

    /// Forgets a carried batch and its report (once the till has taken the report).
    pub fn forget_relay(&self, batch_id: &str) -> Result<(), Error> {
        check_id(batch_id)?;
        let d = relay_dir(self.device_dir());
        let id = batch_id.to_ascii_lowercase();
        for ext in ["report", "batch"] {
            let p = d.join(format!("{id}.{ext}"));
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| Error::io("forgetting a relay", &e))?;
            }
        }
        crate::files::sync_dir(&d)
    }
}

impl MerchantTill {
    /// The till's sync batch (every payment and receipt the issuer has not acknowledged), or
    /// `None` when there is nothing to sync.
    pub fn relay_batch(&self) -> Result<Option<Vec<u8>>, Error> {
        let mut buf = vec![0u8; SYNC_BATCH_MAX];
        let n = crate::sync::Syncable::batch(self, &mut buf)?;
        let batch = buf.get(..n).unwrap_or(&[]);
        let count = decode_unsigned::<SyncBatch<'_>>(batch)
            .doing("reading the sync batch")?
            .len();
        Ok((count > 0).then(|| batch.to_vec()))
    }

    /// The till's sync batch as `count` animated QR frames (texts; draw them with
    /// [`crate::qr::text_png`] or the platform), for a customer's phone to carry to the issuer.
    /// Empty when there is nothing to sync. Show them in a loop: the first
    /// [`crate::qr::fragments`] carry the batch in order, later ones mix its fragments.
    pub fn relay_frames(&self, count: usize) -> Result<Vec<String>, Error> {
        match self.relay_batch()? {
            Some(b) => crate::qr::animate(&b, count),
            None => Ok(Vec::new()),
        }
    }

    /// Applies an issuer's report that a customer's phone carried back: verified under this
    /// till's trust anchors (a changed or forged report is refused and changes nothing), then
    /// every record it settles is pruned as in any sync. Returns how many records it newly
    /// acknowledged.
    pub fn receive_report(&self, report: &[u8]) -> Result<u32, Error> {
        if report.len() > SYNC_REPORT_MAX {
            return Err(Error::invalid("this is larger than any sync report"));
        }
        let now = self.config_now()?;
        let trust = self.trust();
        let n = crate::sync::Syncable::apply(self, report, &trust, now)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
