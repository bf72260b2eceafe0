//! The retry budget: a token bucket, as the AWS SDKs' standard retry mode keeps one.
//!
//! Retrying after a transient failure (a 5xx, a timeout, a dropped connection) takes tokens;
//! each success gives one back. While Clerk flakes, the successes pay for the retries and a
//! run rides through a bad minute; when it keeps failing, the bucket runs dry after about a
//! hundred retries and the run stops sending instead of retrying every change to its own
//! limit. Retries after a 429 are pacing, not failure: they take nothing.
//!
//! One budget may be shared (an `Arc`) by every client of a process, so that a daemon keeps
//! one for its lifetime.

use std::sync::atomic::{AtomicU32, Ordering};

/// Tokens in a full bucket.
pub const RETRY_TOKENS: u32 = 500;
/// What a retry after a 5xx (or another transient answer) takes.
pub const RETRY_COST: u32 = 5;
/// What a retry after a timeout or a dropped connection takes: no answer at all is worse.
pub const NO_ANSWER_RETRY_COST: u32 = 10;
/// What a success gives back.
pub const SUCCESS_REFUND: u32 = 1;

/// A retry budget. Thread-safe; share it with an `Arc`.
#[derive(Debug)]
pub struct RetryBudget {
    tokens: AtomicU32,
    capacity: u32,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget::with_tokens(RETRY_TOKENS)
    }
}

impl RetryBudget {
    /// A full bucket of `capacity` tokens.
    pub fn with_tokens(capacity: u32) -> RetryBudget {
        RetryBudget {
            tokens: AtomicU32::new(capacity),
            capacity,
        }
    }

    /// Takes `cost` tokens for a retry: `false` (and nothing taken) if fewer are left.
    pub fn take(&self, cost: u32) -> bool {
        self.tokens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |tokens| {
                tokens.checked_sub(cost)
            })
            .is_ok()
    }

    /// A request succeeded: one token back, up to a full bucket.
    pub fn succeeded(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |tokens| {
                (tokens < self.capacity).then(|| (tokens + SUCCESS_REFUND).min(self.capacity))
            });
    }

    /// Tokens left.
    pub fn tokens(&self) -> u32 {
        self.tokens.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_api_runs_the_bucket_dry_after_a_hundred_retries() {
        let budget = RetryBudget::default();
        let retries = std::iter::from_fn(|| budget.take(RETRY_COST).then_some(()))
            .take(1_000)
            .count();
        assert_eq!(retries, 100);
        assert_eq!(budget.tokens(), 0);
        assert!(!budget.take(RETRY_COST));
    }

    #[test]
    fn a_retry_without_an_answer_costs_twice_as_much_and_a_refusal_takes_nothing() {
        let budget = RetryBudget::with_tokens(25);
        assert!(budget.take(NO_ANSWER_RETRY_COST));
        assert!(budget.take(NO_ANSWER_RETRY_COST));
        assert!(!budget.take(NO_ANSWER_RETRY_COST));
        assert_eq!(budget.tokens(), 5);
        assert!(budget.take(RETRY_COST));
        assert_eq!(budget.tokens(), 0);
    }

    #[test]
    fn successes_pay_retries_back_up_to_a_full_bucket() {
        let budget = RetryBudget::with_tokens(10);
        budget.succeeded();
        assert_eq!(budget.tokens(), 10);
        assert!(budget.take(RETRY_COST));
        for _ in 0..3 {
            budget.succeeded();
        }
        assert_eq!(budget.tokens(), 8);
        for _ in 0..10 {
            budget.succeeded();
        }
        assert_eq!(budget.tokens(), 10);
    }

    #[test]
    fn one_budget_is_shared_by_every_holder() {
        let budget = std::sync::Arc::new(RetryBudget::with_tokens(10));
        let other = budget.clone();
        assert!(other.take(RETRY_COST));
        assert_eq!(budget.tokens(), 5);
    }
}
