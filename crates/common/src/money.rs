//! Amounts of money as Switchyard writes them: exact decimals of nano-units
//! (10^-9), never floating point.

/// `nanos` nano-units as a decimal with all nine fractional digits, e.g.
/// `0.000210000` for 210,000: the form of cost headers, logs and streamed
/// `usage.cost`.
pub fn decimal(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    format!(
        "{sign}{}.{:09}",
        magnitude / 1_000_000_000,
        magnitude % 1_000_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nano_unit_is_written() {
        assert_eq!(decimal(210_000), "0.000210000");
        assert_eq!(decimal(0), "0.000000000");
        assert_eq!(decimal(12_500_000_001), "12.500000001");
        assert_eq!(decimal(-5), "-0.000000005");
        assert_eq!(decimal(i64::MIN), "-9223372036.854775808");
    }
}
