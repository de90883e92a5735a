//! Amounts as people type and read them: `4.20 EUR`, `500 JPY`, `1.250 KWD`. Parsed digit by
//! digit into minor units with the currency's ISO 4217 exponent; never through a float.

use offpay_protocol::{Amount, Currency};

/// Parses `text` (for example `4.20`, `4.2`, `12`) as an amount of `currency`.
pub fn parse(text: &str, currency: Currency) -> Result<Amount, String> {
    let digits = usize::from(currency.minor_units());
    let bad = || {
        let example = match digits {
            0 => "500".to_string(),
            d => format!("4.{}", "2".repeat(d)),
        };
        format!("'{text}' is not an amount of {currency}: write it like {example}")
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
        return Err(match digits {
            0 => format!("{currency} has no minor unit: '{text}' must be a whole number"),
            d => format!("{currency} has {d} decimal places: '{text}' has more"),
        });
    }
    let too_large = || format!("'{text}' {currency} is too large");
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
    // Ledgers (the issuer's is SQLite) store amounts as signed 64-bit integers.
    if minor > i64::MAX as u64 {
        return Err(too_large());
    }
    if minor == 0 {
        return Err(format!("the amount must be more than 0 {currency}"));
    }
    Ok(Amount(minor))
}

/// Formats `amount` of `currency` with its minor units: `4.20 EUR`, `500 JPY`.
pub fn format(amount: Amount, currency: Currency) -> String {
    format!("{} {currency}", number(amount, currency))
}

/// The number alone: `4.20`, `500`.
pub fn number(amount: Amount, currency: Currency) -> String {
    let digits = u32::from(currency.minor_units());
    if digits == 0 {
        return amount.0.to_string();
    }
    let scale = 10u64.pow(digits);
    format!(
        "{}.{:0width$}",
        amount.0 / scale,
        amount.0 % scale,
        width = digits as usize
    )
}

/// Minor units of a currency given by its code, formatted for people.
pub fn money(minor: u64, currency: &str) -> String {
    match Currency::parse(currency) {
        Some(c) => format(Amount(minor), c),
        None => std::format!("{minor} (minor units) {currency}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn parses_with_the_currency_exponent() {
        assert_eq!(parse("4.20", c("EUR")), Ok(Amount(420)));
        assert_eq!(parse("4.2", c("EUR")), Ok(Amount(420)));
        assert_eq!(parse("50", c("EUR")), Ok(Amount(5000)));
        assert_eq!(parse("0.01", c("EUR")), Ok(Amount(1)));
        assert_eq!(parse("500", c("JPY")), Ok(Amount(500)));
        assert_eq!(parse("1.250", c("KWD")), Ok(Amount(1250)));
        assert_eq!(
            parse("92233720368547758.07", c("EUR")),
            Ok(Amount(i64::MAX as u64))
        );
        assert!(parse("92233720368547758.08", c("EUR")).is_err());
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        for t in [
            "", ".5", "4.", "4,20", "-1", "+1", "1e3", "4.20.1", " 4", "0", "0.00", "NaN",
        ] {
            assert!(parse(t, c("EUR")).is_err(), "{t:?}");
        }
        assert_eq!(
            parse("4.205", c("EUR")),
            Err("EUR has 2 decimal places: '4.205' has more".into())
        );
        assert_eq!(
            parse("5.5", c("JPY")),
            Err("JPY has no minor unit: '5.5' must be a whole number".into())
        );
        assert!(parse("184467440737095516.16", c("EUR")).is_err());
        assert!(parse("99999999999999999999999", c("JPY")).is_err());
    }

    proptest::proptest! {
        /// Every amount prints as text that parses back to it, in every exponent.
        #[test]
        fn any_amount_round_trips(v in 1u64..=i64::MAX as u64, cur in proptest::sample::select(vec!["EUR", "JPY", "KWD"])) {
            let c = c(cur);
            proptest::prop_assert_eq!(parse(&number(Amount(v), c), c), Ok(Amount(v)));
        }

        /// Any text is parsed or refused with a message, never a panic; what parses prints
        /// back to the same value.
        #[test]
        fn any_text_parses_or_is_refused(t in "\\PC{0,30}|[0-9]{0,25}(\\.[0-9]{0,5})?") {
            if let Ok(a) = parse(&t, c("EUR")) {
                proptest::prop_assert_eq!(parse(&number(a, c("EUR")), c("EUR")), Ok(a));
            }
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format(Amount(420), c("EUR")), "4.20 EUR");
        assert_eq!(format(Amount(5), c("EUR")), "0.05 EUR");
        assert_eq!(format(Amount(500), c("JPY")), "500 JPY");
        assert_eq!(format(Amount(1250), c("KWD")), "1.250 KWD");
        for (cur, v) in [
            ("EUR", 123_456u64),
            ("JPY", 7),
            ("BHD", 1),
            ("USD", i64::MAX as u64),
        ] {
            assert_eq!(parse(&number(Amount(v), c(cur)), c(cur)), Ok(Amount(v)));
        }
    }
}
