//! Money across the boundary.

use crate::{OffpayError, Result};
use offpay_sdk as sdk;

/// An amount of one currency in its minor units.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Money {
    /// Minor units (cents for EUR).
    pub minor: u64,
    /// The ISO 4217 code.
    pub currency: String,
}

impl From<sdk::Money> for Money {
    fn from(m: sdk::Money) -> Self {
        Money {
            minor: m.minor(),
            currency: m.currency_code().to_string(),
        }
    }
}

impl TryFrom<Money> for sdk::Money {
    type Error = OffpayError;
    fn try_from(m: Money) -> Result<Self> {
        Ok(sdk::Money::from_minor(m.minor, &m.currency)?)
    }
}

/// Parses `text` (`4.20`, `12`) as an amount of `currency`, by the currency's decimal places.
#[uniffi::export]
pub fn parse_money(text: String, currency: String) -> Result<Money> {
    Ok(sdk::Money::parse(&text, &currency)?.into())
}

/// `money` for people: `4.20 EUR`, `500 JPY`.
#[uniffi::export]
pub fn format_money(money: Money) -> Result<String> {
    Ok(sdk::Money::try_from(money)?.to_string())
}
