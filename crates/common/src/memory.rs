//! A process-wide budget of bytes in flight.
//!
//! Each request's buffers are bounded by their own limits (a request body,
//! a buffered answer), but many requests at once could still hold more
//! memory than the process has. A [`ByteBudget`] is shared by every request
//! of a service: a buffer grows its [`Reservation`] before it grows itself,
//! and a growth the budget cannot cover is refused, so the request fails
//! with a clear error instead of the process running out of memory. The
//! bytes return to the budget when the reservation is dropped.
//!
//! The accounting is one atomic counter: no lock, and nothing to clean up
//! when a request is cancelled mid-read.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;

/// Bytes that requests of a process may hold at once.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    in_use: AtomicUsize,
}

/// The budget is spent: growing a buffer would exceed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the budget of {limit} bytes held at once by all requests is spent")]
pub struct BudgetExhausted {
    /// The budget's limit, in bytes.
    pub limit: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                limit,
                in_use: AtomicUsize::new(0),
            }),
        }
    }

    /// A new, empty reservation against this budget.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            shared: Arc::clone(&self.shared),
            bytes: 0,
        }
    }

    /// Bytes reserved now, by all reservations.
    pub fn in_use(&self) -> usize {
        self.shared.in_use.load(Ordering::Relaxed)
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.shared.limit
    }
}

/// Bytes one request holds against a [`ByteBudget`]; returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    shared: Arc<Shared>,
    bytes: usize,
}

impl Reservation {
    /// Reserves `more` bytes, or refuses if the budget cannot cover them
    /// (the reservation is then unchanged).
    pub fn grow(&mut self, more: usize) -> Result<(), BudgetExhausted> {
        let limit = self.shared.limit;
        let mut in_use = self.shared.in_use.load(Ordering::Relaxed);
        loop {
            let wanted = in_use
                .checked_add(more)
                .filter(|&wanted| wanted <= limit)
                .ok_or(BudgetExhausted { limit })?;
            match self.shared.in_use.compare_exchange_weak(
                in_use,
                wanted,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(current) => in_use = current,
            }
        }
        self.bytes += more;
        Ok(())
    }

    /// Bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Bytes counted against a [`ByteBudget`] until they are dropped: a
/// request body, or a buffered answer.
#[derive(Debug)]
pub struct BudgetedBytes {
    bytes: Bytes,
    _reservation: Reservation,
}

impl BudgetedBytes {
    /// `bytes`, counted by `reservation` (which should cover them).
    pub fn new(bytes: Bytes, reservation: Reservation) -> Self {
        Self {
            bytes,
            _reservation: reservation,
        }
    }
}

impl std::ops::Deref for BudgetedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.shared.in_use.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_return_their_bytes_when_dropped() {
        let budget = ByteBudget::new(100);
        let mut first = budget.reservation();
        let mut second = budget.reservation();
        first.grow(60).expect("within the budget");
        assert_eq!(
            second.grow(41),
            Err(BudgetExhausted { limit: 100 }),
            "together they would exceed it"
        );
        assert_eq!(second.bytes(), 0, "a refused growth reserves nothing");
        second.grow(40).expect("exactly the rest");
        assert_eq!(budget.in_use(), 100);
        drop(first);
        assert_eq!(budget.in_use(), 40);
        second.grow(60).expect("the dropped bytes are free again");
        drop(second);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_growth_that_would_overflow_is_refused() {
        let budget = ByteBudget::new(usize::MAX);
        let mut reservation = budget.reservation();
        reservation.grow(usize::MAX).expect("the whole budget");
        assert!(budget.reservation().grow(1).is_err());
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let budget = ByteBudget::new(1000);
        let held: Vec<Reservation> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut reservation = budget.reservation();
                        for _ in 0..1000 {
                            let _ = reservation.grow(1);
                        }
                        reservation
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().expect("no panic"))
                .collect()
        });
        assert_eq!(held.iter().map(Reservation::bytes).sum::<usize>(), 1000);
        assert_eq!(budget.in_use(), 1000);
        drop(held);
        assert_eq!(budget.in_use(), 0);
    }
}
