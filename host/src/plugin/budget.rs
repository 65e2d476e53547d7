//! What plugins may hold at once: per plugin, at most `max_instances` live instances; across
//! all plugins, at most the memory budget reserved (each live instance reserves its
//! `memory_limit`). A call that finds neither an idle instance nor room for a new one waits
//! for one, up to its deadline, then fails like any other plugin failure — so a flood of
//! unauthenticated CONNECTs cannot grow memory past the budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The memory all plugin instances together may reserve.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    total: Mutex<usize>,
    used: Mutex<usize>,
}

impl MemoryBudget {
    pub fn new(total: usize) -> Self {
        MemoryBudget {
            total: Mutex::new(total),
            used: Mutex::new(0),
        }
    }

    /// A reload may change the total; instances already alive keep their reservations.
    pub fn set_total(&self, total: usize) {
        *self.total.lock() = total;
    }

    fn try_take(&self, bytes: usize) -> bool {
        let total = *self.total.lock();
        let mut used = self.used.lock();
        if used.saturating_add(bytes) > total {
            return false;
        }
        *used += bytes;
        true
    }

    fn give_back(&self, bytes: usize) {
        let mut used = self.used.lock();
        *used = used.saturating_sub(bytes);
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        *self.used.lock()
    }
}

/// One plugin's count of live instances, and the signal that one was freed.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    live: Mutex<usize>,
    freed: Condvar,
}

/// The right to one live instance: held by the instance, released when it is dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    gate: Arc<Gate>,
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
        *self.gate.live.lock() -= 1;
        self.gate.freed.notify_one();
    }
}

impl Gate {
    /// Room for one more instance of `bytes`, if the plugin's cap and the budget allow.
    pub fn reserve(
        self: &Arc<Self>,
        max_instances: usize,
        budget: &Arc<MemoryBudget>,
        bytes: usize,
    ) -> Option<Reservation> {
        let mut live = self.live.lock();
        if *live >= max_instances || !budget.try_take(bytes) {
            return None;
        }
        *live += 1;
        Some(Reservation {
            gate: self.clone(),
            budget: budget.clone(),
            bytes,
        })
    }

    /// Wakes a waiter: an instance went back to the idle list.
    pub fn returned(&self) {
        self.freed.notify_one();
    }

    /// Waits a little for an instance to be freed or returned; false once `until` passed.
    /// The slice is short because another plugin freeing budget does not signal this gate.
    pub fn wait(&self, until: Instant) -> bool {
        let now = Instant::now();
        if now >= until {
            return false;
        }
        let mut live = self.live.lock();
        let slice = (until - now).min(Duration::from_millis(5));
        self.freed.wait_for(&mut live, slice);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_capped_per_plugin_and_by_the_shared_budget() {
        let budget = Arc::new(MemoryBudget::new(100));
        let (a, b) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
        let a1 = a.reserve(2, &budget, 40).unwrap();
        let _a2 = a.reserve(2, &budget, 40).unwrap();
        assert!(a.reserve(2, &budget, 40).is_none(), "plugin cap");
        assert!(
            b.reserve(5, &budget, 40).is_none(),
            "budget: 80 of 100 used"
        );
        let _b1 = b.reserve(5, &budget, 20).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a1);
        assert_eq!(budget.used(), 60);
        assert!(a.reserve(2, &budget, 40).is_some(), "freed by the drop");
    }

    #[test]
    fn waiting_gives_up_at_the_deadline() {
        let gate = Gate::default();
        let until = Instant::now() + Duration::from_millis(20);
        let mut rounds = 0;
        while gate.wait(until) {
            rounds += 1;
        }
        assert!(rounds >= 1 && Instant::now() >= until);
    }
}
