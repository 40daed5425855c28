//! Sessions kept in Redis (`pyeval serve --session-store redis://HOST`), so that any
//! replica serves any session, and a session outlives the replica that ran it (a rolling
//! restart, a crash, a scale-down).
//!
//! A session is the hash `pyeval:session:{id}`: `request`, the JSON that opened it
//! (without its files or dump), from which every replica derives the same limits and
//! grants; `version`, raised by every change; `dump`, its state after its last change
//! (see `pyeval::Session::dump`); or `ended`, why a limit stopped it. A replica keeps the
//! sessions it ran in memory with the version each holds (the registry's hot copies).
//!
//! To run anything on a session, a replica takes its lease, `pyeval:lease:{id}` (one
//! replica at a time; the lease lapses after the run's time limit and a margin, should the
//! replica die), restores the stored dump unless its own copy is as new, runs, writes the
//! new dump while the lease is still its own, and gives the lease back. Keys expire after
//! the session idle time, like sessions in memory.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

/// A session's stored state.
pub struct Stored {
    /// The JSON of the request that opened it.
    pub request: String,
    pub version: u64,
    /// Its state, unless it ended.
    pub dump: Option<Vec<u8>>,
    /// Why a limit stopped it, if one did.
    pub ended: Option<String>,
}

/// One replica's right to run a session, until given back or lapsed.
pub struct Lease {
    id: String,
    token: String,
}

/// The store.
#[derive(Clone)]
pub struct SessionStore {
    connection: ConnectionManager,
    idle: Duration,
}

/// Sets the session's expiry after a change, so that an unused session goes as it would
/// from memory (a script's part: the key is `KEYS[1]`, the idle time `ARGV[1]`).
const EXPIRE_SESSION: &str = "redis.call('PEXPIRE', KEYS[1], ARGV[1])";

impl SessionStore {
    /// Connects to the Redis server at `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`);
    /// sessions unused for `idle` expire.
    pub async fn connect(url: &str, idle: Duration) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let mut connection = ConnectionManager::new(client).await?;
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(SessionStore { connection, idle })
    }

    fn session_key(id: &str) -> String {
        format!("pyeval:session:{id}")
    }

    fn lease_key(id: &str) -> String {
        format!("pyeval:lease:{id}")
    }

    fn idle_ms(&self) -> u64 {
        self.idle.as_millis().try_into().unwrap_or(u64::MAX)
    }

    /// Stores a new session at version 1.
    pub async fn create(&self, id: &str, request: &str, dump: &[u8]) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        let key = Self::session_key(id);
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("request", request.as_bytes()), ("dump", dump)])
            .hset(&key, "version", 1)
            .pexpire(&key, self.idle_ms() as i64)
            .query_async::<()>(&mut connection)
            .await
    }

    /// The session's lease for `ttl`, unless another run holds it.
    pub async fn lease(&self, id: &str, ttl: Duration) -> redis::RedisResult<Option<Lease>> {
        let mut connection = self.connection.clone();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let taken: Option<String> = redis::cmd("SET")
            .arg(Self::lease_key(id))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut connection)
            .await?;
        Ok(taken.map(|_| Lease {
            id: id.to_owned(),
            token,
        }))
    }

    /// Gives `lease` back (if it is still this run's).
    pub async fn release(&self, lease: Lease) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end")
            .key(Self::lease_key(&lease.id))
            .arg(&lease.token)
            .invoke_async::<()>(&mut connection)
            .await
    }

    /// The session's version, and why it ended if it did; `None` if there is no such
    /// session.
    pub async fn version(&self, id: &str) -> redis::RedisResult<Option<(u64, Option<String>)>> {
        let mut connection = self.connection.clone();
        let (version, ended): (Option<u64>, Option<String>) = connection
            .hmget(Self::session_key(id), &["version", "ended"])
            .await?;
        Ok(version.map(|version| (version, ended)))
    }

    /// The whole session; `None` if there is no such session.
    pub async fn load(&self, id: &str) -> redis::RedisResult<Option<Stored>> {
        let mut connection = self.connection.clone();
        let (request, version, dump, ended): (
            Option<String>,
            Option<u64>,
            Option<Vec<u8>>,
            Option<String>,
        ) = connection
            .hmget(
                Self::session_key(id),
                &["request", "version", "dump", "ended"],
            )
            .await?;
        Ok(request.zip(version).map(|(request, version)| Stored {
            request,
            version,
            dump,
            ended,
        }))
    }

    /// Stores `dump` as the session's state at `version`, if `lease` is still the run's
    /// (false if it lapsed and another run may have gone on).
    pub async fn save(&self, lease: &Lease, version: u64, dump: &[u8]) -> redis::RedisResult<bool> {
        let mut connection = self.connection.clone();
        Script::new(&format!(
            "if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end \
             redis.call('HSET', KEYS[1], 'dump', ARGV[3], 'version', ARGV[4]) \
             {EXPIRE_SESSION} return 1"
        ))
        .key(Self::session_key(&lease.id))
        .key(Self::lease_key(&lease.id))
        .arg(self.idle_ms())
        .arg(&lease.token)
        .arg(dump)
        .arg(version)
        .invoke_async(&mut connection)
        .await
    }

    /// Marks the session ended by a limit, for `reason`, dropping its state.
    pub async fn end(&self, lease: &Lease, reason: &str) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        Script::new(&format!(
            "if redis.call('GET', KEYS[2]) ~= ARGV[2] then return end \
             redis.call('HDEL', KEYS[1], 'dump') \
             redis.call('HSET', KEYS[1], 'ended', ARGV[3]) {EXPIRE_SESSION}"
        ))
        .key(Self::session_key(&lease.id))
        .key(Self::lease_key(&lease.id))
        .arg(self.idle_ms())
        .arg(&lease.token)
        .arg(reason)
        .invoke_async::<()>(&mut connection)
        .await
    }

    /// Forgets the session; false if there was none.
    pub async fn delete(&self, id: &str) -> redis::RedisResult<bool> {
        let mut connection = self.connection.clone();
        let removed: u64 = connection.del(Self::session_key(id)).await?;
        Ok(removed > 0)
    }
}
