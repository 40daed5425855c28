//! What a store holds to keep one run within its limits: the memory cap, the evaluator's
//! shared memory budget, and the wall-clock deadline the epoch callback checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Memory that every instance of one evaluator shares: linear memory grown past each
/// instance's snapshot counts against it, and growth past it is refused.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The budget, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes` from the budget, if that many are left.
    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Why a growth of linear memory was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Past the instance's cap, in bytes.
    Cap(usize),
    /// Past the evaluator's budget, in bytes.
    Budget(usize),
}

/// The limits a store enforces while wasm runs.
pub(crate) struct Guard {
    max_bytes: usize,
    budget: Option<Arc<MemoryBudget>>,
    /// Bytes this instance holds of the budget.
    held: usize,
    /// Why the last growth of this run was refused, if it was (a later growth that succeeds
    /// clears it: memory was there after all).
    refused: Option<Refusal>,
    deadline: Instant,
}

impl Guard {
    /// A guard capping each linear memory at `max_bytes`, drawing growth from `budget`.
    pub(crate) fn new(max_bytes: usize, budget: Option<Arc<MemoryBudget>>) -> Self {
        Guard {
            max_bytes,
            budget,
            held: 0,
            refused: None,
            deadline: Instant::now(),
        }
    }

    /// Why the last growth of this run was refused, if it was.
    pub(crate) fn refused(&self) -> Option<Refusal> {
        self.refused
    }

    /// Starts the next run: its deadline `wall_time` from now, no growth refused yet.
    pub(crate) fn start_run(&mut self, wall_time: Duration) {
        self.refused = None;
        let now = Instant::now();
        self.deadline = now
            .checked_add(wall_time)
            .unwrap_or(now + crate::MAX_WALL_TIME);
    }

    /// Whether the run is past its deadline.
    pub(crate) fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.held);
        }
    }
}

impl ResourceLimiter for Guard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(Refusal::Cap(self.max_bytes));
            return Ok(false);
        }
        // A memory being created (current 0) is the snapshot's image, mapped copy-on-write
        // and shared; what the instance grows past it is its own.
        if let (Some(budget), true) = (&self.budget, current > 0) {
            let more = desired - current;
            if !budget.take(more) {
                self.refused = Some(Refusal::Budget(budget.limit()));
                return Ok(false);
            }
            self.held += more;
        }
        self.refused = None;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= pyeval_engine::MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_drawn_from_the_budget_and_given_back() {
        let budget = MemoryBudget::new(10 << 20);
        let mut first = Guard::new(64 << 20, Some(budget.clone()));
        assert!(
            first.memory_growing(0, 40 << 20, None).unwrap(),
            "the image is free"
        );
        assert!(first.memory_growing(40 << 20, 48 << 20, None).unwrap());
        let mut second = Guard::new(64 << 20, Some(budget.clone()));
        assert!(second.memory_growing(0, 40 << 20, None).unwrap());
        assert!(!second.memory_growing(40 << 20, 43 << 20, None).unwrap());
        assert_eq!(second.refused(), Some(Refusal::Budget(10 << 20)));
        drop(first);
        assert!(second.memory_growing(40 << 20, 43 << 20, None).unwrap());
        assert!(!second.memory_growing(43 << 20, 65 << 20, None).unwrap());
        assert_eq!(second.refused(), Some(Refusal::Cap(64 << 20)));
    }
}
