//! Open sessions by id: a cap on how many, and expiry after an idle time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyeval::Session;

/// One open session; evaluations on it take turns.
pub struct Entry {
    pub session: tokio::sync::Mutex<Session>,
    last_used: Mutex<Instant>,
}

impl Entry {
    /// Marks the session used now.
    pub fn touch(&self) {
        *self.last_used.lock().unwrap() = Instant::now();
    }
}

pub struct Sessions {
    open: Mutex<HashMap<String, Arc<Entry>>>,
    max: usize,
    idle: Duration,
}

/// There is no room for another session.
pub struct Full(pub usize);

impl Sessions {
    pub fn new(max: usize, idle: Duration) -> Self {
        Sessions {
            open: Mutex::new(HashMap::new()),
            max,
            idle,
        }
    }

    /// Adds `session` under a new random id.
    pub fn open(&self, session: Session) -> Result<String, Full> {
        let mut open = self.open.lock().unwrap();
        if open.len() >= self.max {
            return Err(Full(self.max));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let entry = Entry {
            session: tokio::sync::Mutex::new(session),
            last_used: Mutex::new(Instant::now()),
        };
        open.insert(id.clone(), Arc::new(entry));
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.open.lock().unwrap().get(id).cloned()
    }

    /// Closes a session; false if there was none.
    pub fn close(&self, id: &str) -> bool {
        self.open.lock().unwrap().remove(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.open.lock().unwrap().len()
    }

    /// Closes every session idle for longer than the idle time and not evaluating.
    pub fn expire(&self) {
        let now = Instant::now();
        self.open.lock().unwrap().retain(|_, entry| {
            let idle = now.duration_since(*entry.last_used.lock().unwrap()) > self.idle;
            !idle || entry.session.try_lock().is_err()
        });
    }

    /// How often `expire` should run.
    pub fn sweep_interval(&self) -> Duration {
        (self.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30))
    }
}
