//! The data directory: one per device, with a subdirectory per role it plays, each a device
//! directory of the SDK (`offpay_sdk::CustomerWallet`, `offpay_sdk::MerchantTill`), whose
//! files the SDK alone reads and writes.
//!
//! ```text
//! DIR/wallet/   the customer's wallet
//! DIR/merchant/ the merchant's till
//! ```

use crate::fail::{Doing, Failure, Result};
use offpay_protocol::Timestamp;
use std::path::{Path, PathBuf};

/// The directory of `role` (`wallet`, `merchant`) in the data directory `data`.
pub fn role_dir(data: &Path, role: &str) -> PathBuf {
    data.join(role)
}

/// Fails with the command that creates the role unless its directory exists.
pub fn require(data: &Path, role: &str, init: &str) -> Result<PathBuf> {
    let dir = role_dir(data, role);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(Failure::new(
            format!(
                "no {role} in {} (missing {})",
                data.display(),
                dir.display()
            ),
            format!("run `offpay --data {} {init}` first", data.display()),
        ))
    }
}

/// The SDK configuration for a device of this command line.
pub fn config(issuer: Option<&str>, now: Option<u32>) -> offpay_sdk::Config {
    offpay_sdk::Config {
        issuer_url: issuer.map(str::to_string),
        fixed_time: now,
        ..offpay_sdk::Config::default()
    }
}

/// Reads a small text file (a token), at most 1 KiB.
pub fn read_token(path: &Path, what: &str) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).doing(&format!("{what} ({})", path.display()))?;
    let mut text = String::new();
    f.take(1025)
        .read_to_string(&mut text)
        .doing(&format!("{what} ({})", path.display()))?;
    if text.len() > 1024 {
        return Err(Failure::new(
            format!("{what}: {} is larger than 1024 bytes", path.display()),
            "it is not a token file",
        ));
    }
    Ok(text.trim().to_string())
}

/// The current time: `OFFPAY_NOW` (Unix seconds, for tests and replays) or the system clock.
pub fn now(fixed: Option<u32>) -> Result<Timestamp> {
    if let Some(t) = fixed {
        return Ok(Timestamp(t));
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Failure::new("the system clock is before 1970", "set the clock"))?
        .as_secs();
    u32::try_from(secs)
        .map(Timestamp)
        .map_err(|_| Failure::new("the system clock is past 2106", "set the clock"))
}

/// A time as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn show_time(t: Timestamp) -> String {
    let secs = i64::from(t.0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A merchant id from its text (1–8 printable ASCII characters, padded with spaces).
pub fn merchant_id(text: &str) -> Result<offpay_protocol::MerchantId> {
    offpay_sdk::merchant_id(text).map_err(|e| Failure::new(e.message(), ""))
}

/// A merchant id as text.
pub fn show_merchant(id: &offpay_protocol::MerchantId) -> String {
    offpay_sdk::merchant_text(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shows_civil_time() {
        assert_eq!(show_time(Timestamp(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(show_time(Timestamp(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            show_time(Timestamp(1_795_478_400 + 3661)),
            "2026-11-24 01:01:01 UTC"
        );
        assert_eq!(show_time(Timestamp(u32::MAX)), "2106-02-07 06:28:15 UTC");
    }

    #[test]
    fn merchant_ids_round_trip() {
        let id = merchant_id("CAFE").unwrap();
        assert_eq!(&id.0, b"CAFE    ");
        assert_eq!(show_merchant(&id), "CAFE");
        assert!(merchant_id("TOO-LONG-ID").is_err());
        assert!(merchant_id("a b").is_err());
        assert!(merchant_id("").is_err());
    }
}
