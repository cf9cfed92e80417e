//! Exact decimal prices.
//!
//! Prices are written as decimal strings (`"2.50"`) and kept as integer
//! micro-units, so no float ever rounds a price.

/// Digits after the decimal point that micro-units can hold.
const MAX_FRACTION_DIGITS: usize = 6;

/// Parses a non-negative decimal string such as `"0.15"` into micro-units
/// (`150000`). Rejects signs, exponents, whitespace, more than six fractional
/// digits and values that overflow `i64`.
pub(crate) fn parse_price_micros(text: &str) -> Result<i64, String> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    if whole.is_empty() || !whole.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("`{text}` is not a decimal number like \"2.50\""));
    }
    let fraction = fraction.unwrap_or("");
    if text.contains('.') && fraction.is_empty() {
        return Err(format!("`{text}` has no digits after the decimal point"));
    }
    if !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("`{text}` is not a decimal number like \"2.50\""));
    }
    if fraction.len() > MAX_FRACTION_DIGITS {
        return Err(format!(
            "`{text}` has more than {MAX_FRACTION_DIGITS} digits after the decimal point"
        ));
    }
    let overflow = || format!("`{text}` is too large");
    let whole: i64 = whole.parse().map_err(|_| overflow())?;
    let padded = format!("{fraction:0<MAX_FRACTION_DIGITS$}");
    let fraction: i64 = padded.parse().map_err(|_| overflow())?;
    whole
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(fraction))
        .ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_price_micros("0.15"), Ok(150_000));
        assert_eq!(parse_price_micros("0.60"), Ok(600_000));
        assert_eq!(parse_price_micros("2.50"), Ok(2_500_000));
        assert_eq!(parse_price_micros("10"), Ok(10_000_000));
        assert_eq!(parse_price_micros("0"), Ok(0));
        assert_eq!(parse_price_micros("0.000001"), Ok(1));
        assert_eq!(parse_price_micros("007.1"), Ok(7_100_000));
        assert_eq!(parse_price_micros("9223372.036854"), Ok(9_223_372_036_854));
    }

    #[test]
    fn rejects_more_than_six_fraction_digits() {
        let error = parse_price_micros("0.0000001").expect_err("seven digits");
        assert!(error.contains("more than 6"), "{error}");
    }

    #[test]
    fn rejects_malformed_numbers() {
        for text in [
            "", ".", ".5", "5.", "-1", "+1", "1e3", " 1", "1 ", "1.2.3", "1,5", "NaN", "1_0",
        ] {
            assert!(parse_price_micros(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_price_micros("9223372036855").is_err());
        assert!(parse_price_micros("99999999999999999999999").is_err());
    }
}
