//! What a store holds to keep one run within its limits: the memory cap, the evaluator's
//! shared memory budget, and the wall-clock deadline of the run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Memory that every instance of one evaluator shares. An instance is charged its whole
/// memory image when made (mapped copy-on-write, but every page of it may be written and so
/// copied) with what the host buffers for it, then each growth; what would pass the budget
/// is refused. The pages pool slots keep resident between instances are set aside from it
/// when the evaluator is built.
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
    pub(crate) fn take(&self, bytes: usize) -> bool {
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
    /// What the host holds for this instance beside its linear memory (output buffers),
    /// charged with its memory image.
    host_bytes: usize,
    /// Bytes this instance holds of the budget.
    held: usize,
    /// Bytes of linear memory granted, the last growth's size.
    memory: usize,
    /// Why the last growth of this run was refused, if it was (a later growth that succeeds
    /// clears it: memory was there after all).
    refused: Option<Refusal>,
    deadline: Instant,
}

impl Guard {
    /// A guard capping each linear memory at `max_bytes`, drawing memory and `host_bytes`
    /// from `budget`.
    pub(crate) fn new(
        max_bytes: usize,
        budget: Option<Arc<MemoryBudget>>,
        host_bytes: usize,
    ) -> Self {
        Guard {
            max_bytes,
            budget,
            host_bytes,
            held: 0,
            memory: 0,
            refused: None,
            deadline: Instant::now(),
        }
    }

    /// Takes over the instance `made` was charged for, as if this guard had made it: its
    /// memory must be within this guard's cap, and this guard's host buffers are drawn
    /// from the budget (`made` has none). False, with nothing changed, if either fails.
    pub(crate) fn take_over(&mut self, made: &mut Guard) -> bool {
        debug_assert_eq!(made.host_bytes, 0, "made without host buffers");
        if made.memory > self.max_bytes {
            return false;
        }
        if let Some(budget) = &self.budget {
            if !budget.take(self.host_bytes) {
                return false;
            }
            self.held += self.host_bytes + std::mem::take(&mut made.held);
        }
        self.memory = made.memory;
        true
    }

    /// Bytes of linear memory the instance has.
    pub(crate) fn memory(&self) -> usize {
        self.memory
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

    /// When the run must end.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
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
        if let Some(budget) = &self.budget {
            // A memory being made (current 0) is the snapshot's image.
            let more = match current {
                0 => desired + self.host_bytes,
                _ => desired - current,
            };
            if !budget.take(more) {
                self.refused = Some(Refusal::Budget(budget.limit()));
                return Ok(false);
            }
            self.held += more;
        }
        self.memory = desired;
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
    fn image_host_buffers_and_growth_are_drawn_from_the_budget_and_given_back() {
        let budget = MemoryBudget::new(90 << 20);
        let mut first = Guard::new(64 << 20, Some(budget.clone()), 2 << 20);
        assert!(first.memory_growing(0, 40 << 20, None).unwrap());
        assert!(first.memory_growing(40 << 20, 48 << 20, None).unwrap());
        let mut second = Guard::new(64 << 20, Some(budget.clone()), 2 << 20);
        assert!(
            !second.memory_growing(0, 40 << 20, None).unwrap(),
            "50 MiB held and 42 more asked: past 90"
        );
        assert_eq!(second.refused(), Some(Refusal::Budget(90 << 20)));
        drop(first);
        assert!(second.memory_growing(0, 40 << 20, None).unwrap());
        assert_eq!(
            second.refused(),
            None,
            "a growth granted clears the refusal"
        );
        assert!(second.memory_growing(40 << 20, 64 << 20, None).unwrap());
        assert!(!second.memory_growing(64 << 20, 65 << 20, None).unwrap());
        assert_eq!(second.refused(), Some(Refusal::Cap(64 << 20)));
        drop(second);
        assert!(budget.take(90 << 20), "everything was given back");
    }

    #[test]
    fn an_instance_made_under_another_guard_is_taken_over_within_cap_and_budget() {
        let budget = MemoryBudget::new(50 << 20);
        let mut made = Guard::new(usize::MAX, Some(budget.clone()), 0);
        assert!(made.memory_growing(0, 40 << 20, None).unwrap());
        let mut small = Guard::new(32 << 20, Some(budget.clone()), 1 << 20);
        assert!(!small.take_over(&mut made), "40 MiB is past a 32 MiB cap");
        let mut greedy = Guard::new(64 << 20, Some(budget.clone()), 16 << 20);
        assert!(
            !greedy.take_over(&mut made),
            "16 MiB of buffers: past the budget"
        );
        let mut session = Guard::new(64 << 20, Some(budget.clone()), 2 << 20);
        assert!(session.take_over(&mut made));
        drop(made);
        assert!(!budget.take(9 << 20), "42 MiB still held, by the session");
        assert!(session.memory_growing(40 << 20, 48 << 20, None).unwrap());
        assert!(!session.memory_growing(48 << 20, 65 << 20, None).unwrap());
        drop(session);
        assert!(budget.take(50 << 20), "everything was given back");
    }
}
