//! Exact cost of usage at a deployment's price.
//!
//! Prices are nano-units (10^-9) per million tokens, so a cost before
//! rounding is an integer number of nano-units × 10^-6, kept in an `i128`.
//! Costs are summed exactly and rounded once, half to even, to the nano-unit.

use switchyard_proto::v1::{Money, Pricing, Usage};

/// Tokens in the "per million" of a price.
const TOKENS_PER_PRICE_UNIT: i128 = 1_000_000;

/// A cost before rounding: nano-units × 10^-6 of `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactCost {
    /// Nano-units times one million.
    pub scaled: i128,
    /// ISO 4217 code.
    pub currency: String,
}

impl ExactCost {
    /// Rounds to whole nano-units, half to even.
    pub fn round(&self) -> Money {
        Money {
            nanos: i64::try_from(round_half_even(self.scaled, TOKENS_PER_PRICE_UNIT))
                .unwrap_or(i64::MAX),
            currency: self.currency.clone(),
        }
    }
}

/// Returns the exact cost of `usage` at `pricing`; `None` when unpriced.
///
/// Prompt tokens include cached reads and cache writes; each part is priced
/// at its own rate (the input price when that rate is unset). Above the
/// long-context threshold, the tier's input and output prices apply to the
/// whole request.
pub fn exact_cost(usage: &Usage, pricing: Option<&Pricing>) -> Option<ExactCost> {
    let (scaled, currency) = scaled_cost(usage, pricing?)?;
    Some(ExactCost {
        scaled,
        currency: currency.to_owned(),
    })
}

/// The cost of `usage` at `pricing` as [`ExactCost::scaled`], and its
/// currency, without allocating: for checks on the data path.
pub fn scaled_cost<'a>(usage: &Usage, pricing: &'a Pricing) -> Option<(i128, &'a str)> {
    let mut input = pricing.input_per_million.as_ref()?;
    let mut output = pricing.output_per_million.as_ref()?;
    if let Some(tier) = &pricing.long_context
        && usage.prompt_tokens > tier.above_prompt_tokens
        && let (Some(tier_input), Some(tier_output)) =
            (&tier.input_per_million, &tier.output_per_million)
    {
        input = tier_input;
        output = tier_output;
    }
    let cached_rate = pricing.cached_input_per_million.as_ref().unwrap_or(input);
    let write_rate = pricing.cache_write_per_million.as_ref().unwrap_or(input);
    let cached = u64::from(usage.cached_prompt_tokens);
    let written = u64::from(usage.cache_write_tokens);
    let uncached = u64::from(usage.prompt_tokens).saturating_sub(cached + written);
    let parts = [
        (uncached, input),
        (cached, cached_rate),
        (written, write_rate),
        (u64::from(usage.completion_tokens), output),
    ];
    let scaled = parts
        .iter()
        .map(|(tokens, rate)| i128::from(*tokens) * i128::from(rate.nanos))
        .sum();
    Some((scaled, input.currency.as_str()))
}

/// [`ExactCost::scaled`] of `nanos` whole nano-units.
pub fn scaled_nanos(nanos: i64) -> i128 {
    i128::from(nanos) * TOKENS_PER_PRICE_UNIT
}

/// Sums exact costs of one currency; `None` when there are none. Costs in
/// another currency than the first are left out (one event, one currency).
pub fn sum<'a>(costs: impl IntoIterator<Item = &'a ExactCost>) -> Option<ExactCost> {
    let mut total: Option<ExactCost> = None;
    for cost in costs {
        match &mut total {
            None => total = Some(cost.clone()),
            Some(total) if total.currency == cost.currency => total.scaled += cost.scaled,
            Some(_) => tracing::warn!("attempts priced in two currencies; one left out"),
        }
    }
    total
}

/// `value / divisor` rounded half to even (banker's rounding); `divisor > 0`.
fn round_half_even(value: i128, divisor: i128) -> i128 {
    let quotient = value.div_euclid(divisor);
    let remainder = value.rem_euclid(divisor);
    match (2 * remainder).cmp(&divisor) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal if quotient % 2 == 0 => quotient,
        std::cmp::Ordering::Equal => quotient + 1,
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::LongContextPricing;

    use super::*;

    fn usd(nanos: i64) -> Option<Money> {
        Some(Money {
            nanos,
            currency: "USD".to_owned(),
        })
    }

    /// `$input` / `$output` per million, written as nano-units per million.
    fn pricing(input: i64, output: i64) -> Pricing {
        Pricing {
            input_per_million: usd(input),
            output_per_million: usd(output),
            ..Pricing::default()
        }
    }

    fn usage(prompt: u32, completion: u32) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..Usage::default()
        }
    }

    fn cost(usage: &Usage, pricing: &Pricing) -> Money {
        exact_cost(usage, Some(pricing)).expect("priced").round()
    }

    #[test]
    fn one_token_at_fifteen_cents_per_million_is_150_nano_dollars() {
        let price = pricing(150_000_000, 600_000_000);
        assert_eq!(cost(&usage(1, 0), &price), usd(150).expect("money"));
        assert_eq!(cost(&usage(0, 1), &price), usd(600).expect("money"));
    }

    #[test]
    fn cost_is_exact_for_ordinary_requests() {
        // $2.50 / $10.00 per million: 1234 × 2500 + 567 × 10000 nano-dollars.
        let price = pricing(2_500_000_000, 10_000_000_000);
        assert_eq!(
            cost(&usage(1_234, 567), &price),
            usd(3_085_000 + 5_670_000).expect("money")
        );
    }

    #[test]
    fn fractions_of_a_nano_round_half_to_even_once() {
        // 1 token at $0.0005 per million = 0.5 nano → 0 (even);
        // 3 tokens = 1.5 → 2; 5 tokens = 2.5 → 2.
        let price = pricing(500_000, 0);
        assert_eq!(cost(&usage(1, 0), &price).nanos, 0);
        assert_eq!(cost(&usage(3, 0), &price).nanos, 2);
        assert_eq!(cost(&usage(5, 0), &price).nanos, 2);
        // Summed before rounding: two halves make one, not zero.
        let half = exact_cost(&usage(1, 0), Some(&price)).expect("priced");
        assert_eq!(sum([&half, &half]).expect("a sum").round().nanos, 1);
    }

    #[test]
    fn cached_reads_writes_and_long_context_have_their_own_rates() {
        let price = Pricing {
            cached_input_per_million: usd(1_000_000_000),
            cache_write_per_million: usd(4_000_000_000),
            long_context: Some(LongContextPricing {
                above_prompt_tokens: 1_000,
                input_per_million: usd(6_000_000_000),
                output_per_million: usd(20_000_000_000),
            }),
            ..pricing(3_000_000_000, 15_000_000_000)
        };
        let mut short = usage(100, 10);
        short.cached_prompt_tokens = 50;
        short.cache_write_tokens = 20;
        // 30 × 3000 + 50 × 1000 + 20 × 4000 + 10 × 15000.
        assert_eq!(
            cost(&short, &price).nanos,
            90_000 + 50_000 + 80_000 + 150_000
        );
        // Above the threshold: 2000 × 6000 + 10 × 20000.
        assert_eq!(cost(&usage(2_000, 10), &price).nanos, 12_000_000 + 200_000);
    }

    #[test]
    fn unpriced_deployments_have_no_cost() {
        assert_eq!(exact_cost(&usage(1, 1), None), None);
        assert_eq!(sum([]), None);
    }
}
