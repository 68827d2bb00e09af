//! Which sandboxes are known to be running, so that `inspect` can answer
//! without a round trip to the engine. The engine's event stream
//! (`events.rs`) keeps it honest; this file holds the rules.
//!
//! - An entry says "running" only after an authoritative observation (a
//!   real inspect, or our own successful start) that began while the stream
//!   was connected, in the same stream epoch as now.
//! - Every event that may end "running" for a container removes its entry
//!   and bumps a sequence number. An observation remembers the number at its
//!   start and is dropped if its container's entry changed meanwhile, so a
//!   death seen during an inspect always wins over the inspect's answer.
//! - A break in the stream (error, end, failed reconnect) starts a new epoch
//!   and forgets everything; until the stream is connected again nothing is
//!   cached.
//! - An entry is trusted for `MAX_AGE` at most, then checked again: a bound
//!   on staleness should the engine drop events for us (it does for a
//!   subscriber that falls 1024 events behind for 100 ms) or the stream stall
//!   without breaking.
//! - At most `MAX_ENTRIES` are kept; the least recently used goes. Forgetting
//!   is always safe: an observation whose entry went is dropped.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lru::LruCache;

/// How long a cached "running" is trusted before a real inspect again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);
/// Entries kept at most (a miss costs one inspect).
const MAX_ENTRIES: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

/// Container actions that cannot end a running container. Any other action,
/// including ones unknown here, removes the container's entry: unknown
/// costs one real inspect, never a wrong answer. (Docker 20.10 emits for
/// containers: attach, commit, copy, create, destroy, detach, die,
/// exec_create, exec_detach, exec_die, exec_start, export, health_status,
/// kill, oom, pause, rename, resize, restart, start, stop, top, unpause,
/// update, and archive-path / extract-to-dir for the archive API.)
const HARMLESS: &[&str] = &[
    "archive-path",
    "attach",
    "commit",
    "copy",
    "create",
    "detach",
    "exec_create",
    "exec_detach",
    "exec_die",
    "exec_start",
    "export",
    "extract-to-dir",
    "health_status",
    "resize",
    "start",
    "top",
    "unpause",
    "update",
];

/// Whether an event with this action may mean the container no longer
/// runs. Exec and health actions carry a suffix (`exec_start: sh -c ...`).
pub(crate) fn may_end_running(action: &str) -> bool {
    let verb = action.split(':').next().unwrap_or_default().trim();
    !HARMLESS.contains(&verb)
}

/// Counters and state of the cache, for tests and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LivenessStats {
    /// The event stream is connected now: answers may come from the cache.
    pub connected: bool,
    /// How many times the stream connected.
    pub connects: u64,
    /// Inspects answered from the cache.
    pub hits: u64,
    /// Inspects that asked the engine.
    pub real_inspects: u64,
}

/// A real inspect (or our own start) in flight; see `LivenessCache::begin`.
#[derive(Debug)]
#[must_use]
pub(crate) struct Observation {
    id: String,
    epoch: u64,
    seq: u64,
    began: Instant,
}

#[derive(Debug)]
pub(crate) struct LivenessCache {
    /// Off (config): nothing is ever cached and no stream runs.
    enabled: bool,
    state: Mutex<State>,
    connects: AtomicU64,
    hits: AtomicU64,
    real_inspects: AtomicU64,
}

#[derive(Debug)]
struct State {
    /// Bumped on every connect and disconnect of the stream.
    epoch: u64,
    connected: bool,
    /// Bumped on every event that may end "running", and on every epoch.
    seq: u64,
    /// By full container id.
    entries: LruCache<String, Entry>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            epoch: 0,
            connected: false,
            seq: 0,
            // Sparse: memory grows with use, not with the bound.
            entries: LruCache::sparse(MAX_ENTRIES),
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// `seq` when the entry was made; an observation older than that is void.
    made: u64,
    /// Running, as observed by an observation that began at this instant.
    running_since: Option<Instant>,
}

impl LivenessCache {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            state: Mutex::new(State::default()),
            connects: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            real_inspects: AtomicU64::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether container `id` (a full id; `None`: known by name only) is
    /// known to be running now. Counts a hit, or a real inspect to come.
    pub(crate) fn running(&self, id: Option<&str>) -> bool {
        let hit = match id {
            Some(id) if self.enabled => {
                let mut state = self.state();
                state.connected
                    && state
                        .entries
                        .get(id)
                        .and_then(|e| e.running_since)
                        .is_some_and(|since| since.elapsed() < MAX_AGE)
            }
            _ => false,
        };
        let counter = if hit { &self.hits } else { &self.real_inspects };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Starts an observation of container `id` (a full id): call before the
    /// engine call whose answer it will carry. `None` when nothing may be
    /// cached now (off, or the stream is not connected).
    pub(crate) fn begin(&self, id: &str) -> Option<Observation> {
        if !self.enabled {
            return None;
        }
        let mut state = self.state();
        if !state.connected {
            return None;
        }
        let made = state.seq;
        state.entries.get_or_insert_mut(id.to_owned(), || Entry {
            made,
            running_since: None,
        });
        Some(Observation {
            id: id.to_owned(),
            epoch: state.epoch,
            seq: state.seq,
            began: Instant::now(),
        })
    }

    /// Ends an observation: `running` is what the engine said (and whether
    /// the container is one the stream sees). Kept only if the stream stayed
    /// connected in the same epoch and nothing happened to the container
    /// since the observation began.
    pub(crate) fn finish(&self, observation: Observation, running: bool) {
        let mut state = self.state();
        let current = state.connected && state.epoch == observation.epoch;
        match state.entries.get_mut(&observation.id) {
            Some(entry) if current && entry.made <= observation.seq => {
                if running {
                    entry.running_since = Some(observation.began);
                } else {
                    state.entries.pop(&observation.id);
                }
            }
            _ => {}
        }
    }

    /// An event that may end "running" for container `id`.
    pub(crate) fn invalidate(&self, id: &str) {
        let mut state = self.state();
        state.seq += 1;
        state.entries.pop(id);
    }

    /// The stream is subscribed (new epoch): caching may start.
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.new_epoch(true);
    }

    /// The stream broke or could not connect: forget everything.
    pub(crate) fn disconnected(&self) {
        self.new_epoch(false);
    }

    fn new_epoch(&self, connected: bool) {
        let mut state = self.state();
        state.epoch += 1;
        state.seq += 1;
        state.connected = connected;
        state.entries.clear();
    }

    pub(crate) fn stats(&self) -> LivenessStats {
        LivenessStats {
            connected: self.enabled && self.state().connected,
            connects: self.connects.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            real_inspects: self.real_inspects.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected() -> LivenessCache {
        let cache = LivenessCache::new(true);
        cache.connected();
        cache
    }

    fn observe(cache: &LivenessCache, id: &str) {
        let seen = cache.begin(id).expect("connected");
        cache.finish(seen, true);
    }

    #[test]
    fn caches_only_after_an_observation_on_a_connected_stream() {
        let cache = LivenessCache::new(true);
        assert!(cache.begin("a").is_none(), "never connected: no caching");
        assert!(!cache.running(Some("a")));
        cache.connected();
        assert!(!cache.running(Some("a")), "connected, not yet observed");
        observe(&cache, "a");
        assert!(cache.running(Some("a")));
        assert!(!cache.running(Some("b")));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.real_inspects), (1, 3));
    }

    #[test]
    fn off_never_caches() {
        let cache = LivenessCache::new(false);
        cache.connected();
        assert!(cache.begin("a").is_none());
        assert!(!cache.running(Some("a")));
        assert!(!cache.stats().connected);
    }

    #[test]
    fn a_death_event_removes_the_entry() {
        let cache = connected();
        observe(&cache, "a");
        observe(&cache, "b");
        cache.invalidate("a");
        assert!(!cache.running(Some("a")));
        assert!(cache.running(Some("b")));
    }

    #[test]
    fn a_death_during_an_inspect_wins_over_its_answer() {
        let cache = connected();
        let stale = cache.begin("a").unwrap();
        cache.invalidate("a");
        // Another inspect began after the death and is still in flight.
        let fresh = cache.begin("a").unwrap();
        cache.finish(stale, true);
        assert!(!cache.running(Some("a")), "the stale inspect was recorded");
        cache.finish(fresh, true);
        assert!(cache.running(Some("a")));
    }

    #[test]
    fn an_event_for_another_container_does_not_void_an_observation() {
        let cache = connected();
        let seen = cache.begin("a").unwrap();
        cache.invalidate("b");
        cache.finish(seen, true);
        assert!(cache.running(Some("a")));
    }

    #[test]
    fn a_break_in_the_stream_forgets_and_voids_observations_in_flight() {
        let cache = connected();
        observe(&cache, "a");
        let in_flight = cache.begin("b").unwrap();
        cache.disconnected();
        assert!(!cache.running(Some("a")));
        assert!(cache.begin("a").is_none(), "disconnected: no caching");
        cache.connected();
        cache.finish(in_flight, true);
        assert!(!cache.running(Some("b")), "an observation of the old epoch");
        assert!(!cache.running(Some("a")), "an entry of the old epoch");
        observe(&cache, "a");
        assert!(cache.running(Some("a")));
        assert_eq!(cache.stats().connects, 2);
    }

    #[test]
    fn a_full_cache_forgets_the_least_recently_used() {
        let cache = connected();
        observe(&cache, "first");
        observe(&cache, "kept");
        for i in 2..MAX_ENTRIES.get() {
            observe(&cache, &format!("c{i}"));
        }
        assert!(cache.running(Some("kept")), "in use: now the most recent");
        observe(&cache, "one more");
        assert!(
            !cache.running(Some("first")),
            "the least recently used went"
        );
        assert!(cache.running(Some("kept")));
        assert!(cache.running(Some("one more")));
        assert!(cache.running(Some("c2")));
    }

    #[test]
    fn not_running_removes_the_entry() {
        let cache = connected();
        observe(&cache, "a");
        let seen = cache.begin("a").unwrap();
        cache.finish(seen, false);
        assert!(!cache.running(Some("a")));
    }

    #[test]
    fn an_old_observation_expires() {
        let cache = connected();
        let mut seen = cache.begin("a").unwrap();
        seen.began = Instant::now() - MAX_AGE;
        cache.finish(seen, true);
        assert!(!cache.running(Some("a")));
    }

    #[test]
    fn actions_that_may_end_running() {
        for action in [
            "die",
            "kill",
            "oom",
            "stop",
            "destroy",
            "pause",
            "restart",
            "rename",
            "new-thing",
        ] {
            assert!(may_end_running(action), "{action}");
        }
        for action in [
            "exec_start: sh -c true",
            "exec_die",
            "health_status: healthy",
            "start",
            "archive-path",
        ] {
            assert!(!may_end_running(action), "{action}");
        }
    }
}
