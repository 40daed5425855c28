//! Open sessions by id (HTTP) or by name (MCP): one registry for both servers.
//!
//! Each is bounded: a cap on how many are open, expiry after an idle time, one evaluation
//! at a time (a second is refused at once, not queued), a close that cancels what is
//! running, and a session stopped by a limit gives its instance back at once (its id then
//! tells why it ended until it expires).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyeval::{EvalError, Session, Stopped};
use tokio::sync::watch;

/// One open session.
struct Entry {
    session: tokio::sync::Mutex<Session>,
    last_used: Mutex<Instant>,
    /// Set when the session is closed, which cancels an evaluation in progress.
    closed: watch::Sender<bool>,
    /// The version of the session store's copy this one is (0: none).
    version: AtomicU64,
}

impl Entry {
    fn touch(&self) {
        *self.last_used.lock().unwrap() = Instant::now();
    }

    fn idle_since(&self) -> Instant {
        *self.last_used.lock().unwrap()
    }
}

enum Slot {
    Live(Arc<Entry>),
    /// Stopped by a limit: the instance is gone; the id still says why, until it expires.
    Ended {
        stop: Stopped,
        at: Instant,
    },
}

/// Why a session could not run code.
#[derive(Debug)]
pub enum Refused {
    /// No session has this id: it was closed, expired, or never opened.
    Unknown,
    /// The session is running another evaluation.
    Busy,
    /// A limit stopped the session earlier.
    Ended(Stopped),
    /// The session was closed while this evaluation ran; the evaluation was cancelled.
    Closed,
    /// As many sessions are open as the registry keeps.
    Full(usize),
}

/// The open sessions of one server.
pub struct Sessions {
    slots: Mutex<HashMap<String, Slot>>,
    max: usize,
    idle: Duration,
}

impl Sessions {
    /// A registry of at most `max` sessions, each closed after `idle` unused.
    pub fn new(max: usize, idle: Duration) -> Self {
        Sessions {
            slots: Mutex::new(HashMap::new()),
            max,
            idle,
        }
    }

    /// Adds `session` under a new random id (122 random bits).
    pub fn open(&self, session: Session) -> Result<String, Refused> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.insert(&id, session)?;
        Ok(id)
    }

    /// Makes sure a live session is named `name`, starting one with `start` if there is
    /// none (or the one there was ended by a limit).
    pub fn open_named(
        &self,
        name: &str,
        start: impl FnOnce() -> Result<Session, EvalError>,
    ) -> Result<(), OpenError> {
        if matches!(self.slots.lock().unwrap().get(name), Some(Slot::Live(_))) {
            return Ok(());
        }
        let session = start().map_err(OpenError::Eval)?;
        self.insert(name, session).map_err(OpenError::Refused)
    }

    fn insert(&self, key: &str, session: Session) -> Result<(), Refused> {
        self.put(key, session, 0)
    }

    /// Puts `session`, a copy of the session store's at `version`, under `key`, in place
    /// of any session there (which is closed).
    pub fn put(&self, key: &str, session: Session, version: u64) -> Result<(), Refused> {
        let mut slots = self.slots.lock().unwrap();
        let replaced = matches!(slots.get(key), Some(Slot::Live(_)));
        if !replaced && Self::live(&slots) >= self.max {
            return Err(Refused::Full(self.max));
        }
        let entry = Entry {
            session: tokio::sync::Mutex::new(session),
            last_used: Mutex::new(Instant::now()),
            closed: watch::channel(false).0,
            version: AtomicU64::new(version),
        };
        if let Some(Slot::Live(old)) = slots.insert(key.to_owned(), Slot::Live(Arc::new(entry))) {
            old.closed.send_replace(true);
        }
        Ok(())
    }

    /// The version of the session store's copy that the live session `key` is.
    pub fn version(&self, key: &str) -> Option<u64> {
        match self.slots.lock().unwrap().get(key) {
            Some(Slot::Live(entry)) => Some(entry.version.load(Ordering::Acquire)),
            _ => None,
        }
    }

    /// Notes that the live session `key` is now the store's copy at `version`.
    pub fn set_version(&self, key: &str, version: u64) {
        if let Some(Slot::Live(entry)) = self.slots.lock().unwrap().get(key) {
            entry.version.store(version, Ordering::Release);
        }
    }

    /// Runs `work` on the session `key` when no other work runs on it; a stop ends the
    /// session, as does a caller that goes away before `work` finished.
    pub async fn with<T>(
        &self,
        key: &str,
        work: impl AsyncFnOnce(&mut Session) -> Result<T, EvalError>,
    ) -> Result<Result<T, EvalError>, Refused> {
        let entry = match self.slots.lock().unwrap().get(key) {
            Some(Slot::Live(entry)) => entry.clone(),
            Some(Slot::Ended { stop, .. }) => return Err(Refused::Ended(stop.clone())),
            None => return Err(Refused::Unknown),
        };
        let mut session = entry.session.try_lock().map_err(|_| Refused::Busy)?;
        let mut closed = entry.closed.subscribe();
        entry.touch();
        // Until the evaluation finishes, a caller that goes away (a client disconnecting)
        // cancels it, which ends the session: its instance is freed then, not at expiry.
        let mut ending = Ending {
            sessions: self,
            key,
            entry: &entry,
            stop: Some(Stopped::Cancelled),
        };
        let result = tokio::select! {
            result = work(&mut session) => result,
            // Dropping the evaluation cancels it; the instance goes with the entry.
            _ = closed.wait_for(|closed| *closed) => return Err(Refused::Closed),
        };
        entry.touch();
        ending.stop = match &result {
            Err(EvalError::Stopped(stop)) => Some(stop.clone()),
            _ => None,
        };
        Ok(result)
    }

    /// Replaces the live `entry` under `key` by a note of why it ended, freeing its
    /// instance.
    fn end(&self, key: &str, entry: &Arc<Entry>, stop: Stopped) {
        let mut slots = self.slots.lock().unwrap();
        if matches!(slots.get(key), Some(Slot::Live(live)) if Arc::ptr_eq(live, entry)) {
            // The notes are bounded like the sessions: past `max` of them, an ended
            // session is simply forgotten.
            let ended = slots.len() - Self::live(&slots);
            if ended < self.max {
                let at = Instant::now();
                slots.insert(key.to_owned(), Slot::Ended { stop, at });
            } else {
                slots.remove(key);
            }
        }
    }

    /// Closes a session, cancelling its evaluation if one runs; false if there was none.
    pub fn close(&self, key: &str) -> bool {
        let removed = self.slots.lock().unwrap().remove(key);
        if let Some(Slot::Live(entry)) = &removed {
            entry.closed.send_replace(true);
        }
        removed.is_some()
    }

    /// Sessions open (not counting ended ones).
    pub fn len(&self) -> usize {
        Self::live(&self.slots.lock().unwrap())
    }

    fn live(slots: &HashMap<String, Slot>) -> usize {
        slots
            .values()
            .filter(|slot| matches!(slot, Slot::Live(_)))
            .count()
    }

    /// Closes every session idle for longer than the idle time and not evaluating, and
    /// forgets ended ones as old.
    pub fn expire(&self) {
        let now = Instant::now();
        self.slots.lock().unwrap().retain(|_, slot| match slot {
            Slot::Live(entry) => {
                now.duration_since(entry.idle_since()) <= self.idle
                    || entry.session.try_lock().is_err()
            }
            Slot::Ended { at, .. } => now.duration_since(*at) <= self.idle,
        });
    }

    /// How often `expire` should run.
    pub fn sweep_interval(&self) -> Duration {
        (self.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30))
    }

    /// Runs `expire` every `sweep_interval` until the returned task is aborted.
    pub fn sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sessions = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sessions.sweep_interval());
            loop {
                tick.tick().await;
                sessions.expire();
            }
        })
    }
}

/// Ends a session when dropped with a stop: see [`Sessions::eval`].
struct Ending<'a> {
    sessions: &'a Sessions,
    key: &'a str,
    entry: &'a Arc<Entry>,
    stop: Option<Stopped>,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            self.sessions.end(self.key, self.entry, stop);
        }
    }
}

/// Why a named session could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The registry refused it.
    Refused(Refused),
    /// The evaluator could not start it.
    Eval(EvalError),
}
