//! Exact cost of a response from token counts and per-million prices.

use switchyard_proto::v1::{Money, Usage};

/// Returns the cost of `usage` in integer micro-units, rounding half up to
/// the micro-unit once, on the total (never per token, never through floats).
/// `None` when the route has no price.
pub fn cost_of(
    usage: &Usage,
    input_per_million: Option<&Money>,
    output_per_million: Option<&Money>,
) -> Option<Money> {
    let currency = input_per_million
        .or(output_per_million)
        .map(|price| price.currency.clone())?;
    let input = i128::from(input_per_million.map_or(0, |price| price.micros));
    let output = i128::from(output_per_million.map_or(0, |price| price.micros));
    // Prices are micros per 1,000,000 tokens, so this is micros × 10^6.
    let scaled =
        i128::from(usage.prompt_tokens) * input + i128::from(usage.completion_tokens) * output;
    let micros = (scaled + 500_000).div_euclid(1_000_000);
    Some(Money {
        micros: i64::try_from(micros).unwrap_or(i64::MAX),
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(micros: i64) -> Money {
        Money {
            micros,
            currency: "USD".to_owned(),
        }
    }

    #[test]
    fn cost_is_exact_and_rounded_once() {
        // $2.50 / $10.00 per million tokens.
        let usage = Usage {
            prompt_tokens: 1_234,
            completion_tokens: 567,
            ..Usage::default()
        };
        let cost = cost_of(&usage, Some(&usd(2_500_000)), Some(&usd(10_000_000))).expect("priced");
        // 1234 × 2.5 + 567 × 10 = 3085 + 5670 = 8755 micros.
        assert_eq!(cost, usd(8_755));
    }

    #[test]
    fn fractions_of_a_micro_round_half_up() {
        let usage = Usage {
            prompt_tokens: 3,
            ..Usage::default()
        };
        // 3 tokens × $0.15 per million = 0.45 micros -> 0.
        assert_eq!(cost_of(&usage, Some(&usd(150_000)), None), Some(usd(0)));
        let usage = Usage {
            prompt_tokens: 5,
            ..Usage::default()
        };
        // 5 × 0.15 = 0.75 micros -> 1.
        assert_eq!(cost_of(&usage, Some(&usd(150_000)), None), Some(usd(1)));
    }

    #[test]
    fn unpriced_route_has_no_cost() {
        assert_eq!(cost_of(&Usage::default(), None, None), None);
    }
}
