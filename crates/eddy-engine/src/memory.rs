//! The engine-wide memory budget for memtables (invariant M1).
//!
//! Memtables charge the bytes they grow by; dropping a memtable (after its flush is
//! published and no search pins it any more) releases them. A writer first *reserves* an
//! estimate of what its operation will add; when the reservation does not fit, it waits for
//! releases up to a bound and then fails with `Overloaded`. A reservation larger than the
//! whole budget is admitted only when nothing else is held, so an oversized batch cannot
//! deadlock the engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct Usage {
    charged: usize,
    reserved: usize,
}

/// The budget shared by all memtables.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    usage: Mutex<Usage>,
    released: Condvar,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            usage: Mutex::new(Usage::default()),
            released: Condvar::new(),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged by memtables.
    pub fn charged(&self) -> usize {
        self.usage.lock().charged
    }

    /// Bytes charged plus reserved.
    pub fn in_use(&self) -> usize {
        let u = self.usage.lock();
        u.charged + u.reserved
    }

    /// Reserves `bytes`, waiting up to `wait` for room.
    pub fn reserve(self: &Arc<Self>, bytes: usize, wait: Duration) -> Result<Reservation> {
        let deadline = Instant::now() + wait;
        let mut usage = self.usage.lock();
        loop {
            let held = usage.charged + usage.reserved;
            if held + bytes <= self.limit || held == 0 {
                usage.reserved += bytes;
                return Ok(Reservation {
                    budget: self.clone(),
                    bytes,
                });
            }
            if self.released.wait_until(&mut usage, deadline).timed_out() {
                let held = usage.charged + usage.reserved;
                if held + bytes <= self.limit || held == 0 {
                    continue;
                }
                return Err(Error::Overloaded {
                    retry_after: Duration::from_secs(1),
                });
            }
        }
    }

    /// Reserves `bytes` if there is room now.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut usage = self.usage.lock();
        let held = usage.charged + usage.reserved;
        if held + bytes <= self.limit || held == 0 {
            usage.reserved += bytes;
            return Some(Reservation {
                budget: self.clone(),
                bytes,
            });
        }
        None
    }

    /// Charges memtable growth.
    pub fn charge(&self, bytes: usize) {
        self.usage.lock().charged += bytes;
    }

    /// Releases charged bytes.
    pub fn release(&self, bytes: usize) {
        let mut usage = self.usage.lock();
        usage.charged = usage.charged.saturating_sub(bytes);
        drop(usage);
        self.released.notify_all();
    }
}

/// Room reserved for an operation; released on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut usage = self.budget.usage.lock();
        usage.reserved = usage.reserved.saturating_sub(self.bytes);
        drop(usage);
        self.budget.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_after_the_wait_bound() {
        let budget = MemoryBudget::new(100);
        let r = budget.reserve(80, Duration::ZERO).unwrap();
        let start = Instant::now();
        let err = budget.reserve(30, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::Overloaded { .. }));
        assert!(start.elapsed() >= Duration::from_millis(50));
        drop(r);
        budget.reserve(30, Duration::ZERO).unwrap();
    }

    #[test]
    fn release_wakes_a_waiter() {
        let budget = MemoryBudget::new(100);
        budget.charge(90);
        let b2 = budget.clone();
        let t = std::thread::spawn(move || b2.reserve(50, Duration::from_secs(5)).map(|_| ()));
        std::thread::sleep(Duration::from_millis(20));
        budget.release(90);
        t.join().unwrap().unwrap();
    }

    #[test]
    fn oversized_is_admitted_alone() {
        let budget = MemoryBudget::new(10);
        let r = budget.reserve(1000, Duration::ZERO).unwrap();
        assert!(budget.reserve(1, Duration::ZERO).is_err());
        drop(r);
        assert_eq!(budget.in_use(), 0);
    }
}
