//! Money as people type and read it: `4.20 EUR`, `500 JPY`, `1.250 KWD`. Parsed digit by digit
//! into minor units with the currency's ISO 4217 exponent; never through a float.

use crate::Error;
use offpay_protocol::{Amount, Currency};
use std::fmt;

/// An amount of one currency, in its minor units (cents for EUR, yen for JPY, fils for KWD).
///
/// ```
/// use offpay_sdk::Money;
/// let m = Money::parse("4.2", "eur")?;
/// assert_eq!((m.minor(), m.currency_code()), (420, "EUR"));
/// assert_eq!(m.to_string(), "4.20 EUR");
/// assert_eq!(Money::parse("500", "JPY")?.to_string(), "500 JPY");
/// assert!(Money::parse("5.5", "JPY").is_err()); // JPY has no minor unit
/// # Ok::<(), offpay_sdk::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor: u64,
    currency: Currency,
}

/// The largest amount a ledger holds: the issuer stores amounts as signed 64-bit integers.
pub const MAX_MINOR: u64 = i64::MAX as u64;

impl Money {
    /// `minor` units of `currency`; refused when above [`MAX_MINOR`].
    pub fn new(minor: u64, currency: Currency) -> Result<Self, Error> {
        if minor > MAX_MINOR {
            return Err(Error::invalid(format!(
                "{minor} minor units of {currency} is more than a ledger holds"
            )));
        }
        Ok(Money { minor, currency })
    }

    /// `minor` units of the currency whose ISO 4217 code is `code` (any case).
    pub fn from_minor(minor: u64, code: &str) -> Result<Self, Error> {
        Money::new(minor, currency(code)?)
    }

    /// Parses `text` (`4.20`, `4.2`, `12`) as an amount of the currency `code`. More than 0, at
    /// most the currency's decimal places, digits and one `.` only.
    pub fn parse(text: &str, code: &str) -> Result<Self, Error> {
        let c = currency(code)?;
        parse(text, c).map(|a| Money {
            minor: a.0,
            currency: c,
        })
    }

    /// The amount in minor units.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The currency's ISO 4217 code.
    pub fn currency_code(&self) -> &str {
        self.currency.as_str()
    }

    /// The amount as the protocol carries it.
    pub fn amount(&self) -> Amount {
        Amount(self.minor)
    }

    /// The number alone, with the currency's decimal places: `4.20`, `500`.
    pub fn number(&self) -> String {
        let digits = u32::from(self.currency.minor_units());
        if digits == 0 {
            return self.minor.to_string();
        }
        let scale = 10u64.pow(digits);
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = digits as usize
        )
    }

    pub(crate) fn of(amount: Amount, currency: Currency) -> Self {
        Money {
            minor: amount.0,
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number(), self.currency)
    }
}

/// The currency whose ISO 4217 code is `code` (any case).
pub fn currency(code: &str) -> Result<Currency, Error> {
    Currency::parse(&code.to_ascii_uppercase()).ok_or_else(|| {
        Error::invalid(format!(
            "'{code}' is not a currency code; use an ISO 4217 code such as EUR, USD or JPY"
        ))
    })
}

/// Minor units of a currency given by its code, for people: `4.20 EUR`, or `7 (minor units)
/// XYZ` for a code this version does not know.
pub fn show(minor: u64, code: &str) -> String {
    match Currency::parse(code) {
        Some(c) => Money::of(Amount(minor), c).to_string(),
        None => format!("{minor} (minor units) {code}"),
    }
}

fn parse(text: &str, currency: Currency) -> Result<Amount, Error> {
    let digits = usize::from(currency.minor_units());
    let bad = || {
        let example = match digits {
            0 => "500".to_string(),
            d => format!("4.{}", "2".repeat(d)),
        };
        Error::invalid(format!(
            "'{text}' is not an amount of {currency}: write it like {example}"
        ))
    };
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (text.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    if frac.len() > digits {
        return Err(Error::invalid(match digits {
            0 => format!("{currency} has no minor unit: '{text}' must be a whole number"),
            d => format!("{currency} has {d} decimal places: '{text}' has more"),
        }));
    }
    let too_large = || Error::invalid(format!("'{text}' {currency} is too large"));
    let mut minor: u64 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    for _ in frac.len()..digits {
        minor = minor.checked_mul(10).ok_or_else(too_large)?;
    }
    if minor > MAX_MINOR {
        return Err(too_large());
    }
    if minor == 0 {
        return Err(Error::invalid(format!(
            "the amount must be more than 0 {currency}"
        )));
    }
    Ok(Amount(minor))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn m(text: &str, code: &str) -> Result<u64, String> {
        Money::parse(text, code)
            .map(|m| m.minor())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_with_the_currency_exponent() {
        assert_eq!(m("4.20", "EUR"), Ok(420));
        assert_eq!(m("4.2", "eur"), Ok(420));
        assert_eq!(m("50", "EUR"), Ok(5000));
        assert_eq!(m("0.01", "EUR"), Ok(1));
        assert_eq!(m("500", "JPY"), Ok(500));
        assert_eq!(m("1.250", "KWD"), Ok(1250));
        assert_eq!(m("92233720368547758.07", "EUR"), Ok(MAX_MINOR));
        assert!(m("92233720368547758.08", "EUR").is_err());
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        for t in [
            "", ".5", "4.", "4,20", "-1", "+1", "1e3", "4.20.1", " 4", "0", "0.00", "NaN",
        ] {
            assert!(m(t, "EUR").is_err(), "{t:?}");
        }
        assert_eq!(
            m("4.205", "EUR"),
            Err("EUR has 2 decimal places: '4.205' has more".into())
        );
        assert_eq!(
            m("5.5", "JPY"),
            Err("JPY has no minor unit: '5.5' must be a whole number".into())
        );
        assert!(m("184467440737095516.16", "EUR").is_err());
        assert!(m("99999999999999999999999", "JPY").is_err());
        assert!(m("1", "XXXX").is_err());
        assert!(Money::from_minor(MAX_MINOR + 1, "EUR").is_err());
    }

    #[test]
    fn formats() {
        let f = |v, c| Money::from_minor(v, c).unwrap().to_string();
        assert_eq!(f(420, "EUR"), "4.20 EUR");
        assert_eq!(f(5, "EUR"), "0.05 EUR");
        assert_eq!(f(500, "JPY"), "500 JPY");
        assert_eq!(f(1250, "KWD"), "1.250 KWD");
        assert_eq!(show(420, "EUR"), "4.20 EUR");
        assert_eq!(show(7, "ZZZ1"), "7 (minor units) ZZZ1");
    }

    proptest::proptest! {
        /// Every amount prints as text that parses back to it, in every exponent.
        #[test]
        fn any_amount_round_trips(v in 1u64..=MAX_MINOR, cur in proptest::sample::select(vec!["EUR", "JPY", "KWD"])) {
            let money = Money::from_minor(v, cur).unwrap();
            proptest::prop_assert_eq!(Money::parse(&money.number(), cur).unwrap(), money);
        }

        /// Any text is parsed or refused with a message, never a panic; what parses prints
        /// back to the same value.
        #[test]
        fn any_text_parses_or_is_refused(t in "\\PC{0,30}|[0-9]{0,25}(\\.[0-9]{0,5})?") {
            if let Ok(a) = Money::parse(&t, "EUR") {
                proptest::prop_assert_eq!(Money::parse(&a.number(), "EUR").unwrap(), a);
            }
        }
    }
}
