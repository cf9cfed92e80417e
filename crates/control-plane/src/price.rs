//! Exact decimal prices.
//!
//! Prices are written as decimal strings (`"2.50"`) and kept as integer
//! nano-units (10^-9), so no float ever rounds a price.

/// Digits after the decimal point that nano-units can hold.
const MAX_FRACTION_DIGITS: usize = 9;

/// Nano-units in one unit.
const NANOS_PER_UNIT: i64 = 1_000_000_000;

/// Parses a non-negative decimal string such as `"0.15"` into nano-units
/// (`150000000`). Rejects signs, exponents, whitespace, more than nine
/// fractional digits and values that overflow `i64`.
pub fn parse_price_nanos(text: &str) -> Result<i64, String> {
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
        .checked_mul(NANOS_PER_UNIT)
        .and_then(|nanos| nanos.checked_add(fraction))
        .ok_or_else(overflow)
}

/// Writes nano-units back as the shortest decimal string `parse_price_nanos`
/// reads as the same value (`150000000` is `"0.15"`). Negative values keep
/// their sign, so validation names them instead of losing it.
pub fn format_price_nanos(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    let whole = magnitude / NANOS_PER_UNIT.unsigned_abs();
    let fraction = magnitude % NANOS_PER_UNIT.unsigned_abs();
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let fraction = format!("{fraction:0>MAX_FRACTION_DIGITS$}");
    format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_back_to_what_parses_to_the_same_value() {
        for (nanos, text) in [
            (150_000_000, "0.15"),
            (2_500_000_000, "2.5"),
            (100_000_000_000, "100"),
            (1, "0.000000001"),
            (0, "0"),
            (-5, "-0.000000005"),
        ] {
            assert_eq!(format_price_nanos(nanos), text);
            if nanos >= 0 {
                assert_eq!(parse_price_nanos(text), Ok(nanos));
            }
        }
        assert!(parse_price_nanos(&format_price_nanos(-5)).is_err());
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_price_nanos("0.15"), Ok(150_000_000));
        assert_eq!(parse_price_nanos("0.60"), Ok(600_000_000));
        assert_eq!(parse_price_nanos("2.50"), Ok(2_500_000_000));
        assert_eq!(parse_price_nanos("10"), Ok(10_000_000_000));
        assert_eq!(parse_price_nanos("0"), Ok(0));
        assert_eq!(parse_price_nanos("0.000000001"), Ok(1));
        assert_eq!(parse_price_nanos("007.1"), Ok(7_100_000_000));
        assert_eq!(parse_price_nanos("9223372036.854775807"), Ok(i64::MAX));
    }

    #[test]
    fn rejects_more_than_nine_fraction_digits() {
        let error = parse_price_nanos("0.0000000001").expect_err("ten digits");
        assert!(error.contains("more than 9"), "{error}");
    }

    #[test]
    fn rejects_malformed_numbers() {
        for text in [
            "", ".", ".5", "5.", "-1", "+1", "1e3", " 1", "1 ", "1.2.3", "1,5", "NaN", "1_0",
        ] {
            assert!(parse_price_nanos(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_price_nanos("9223372036.854775808").is_err());
        assert!(parse_price_nanos("99999999999999999999999").is_err());
    }
}
