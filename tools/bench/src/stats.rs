//! Latency samples and their percentiles, shared by every bench so that
//! every figure in BENCHMARKS.md is computed the same way: nearest rank
//! (the smallest sample with at least `p` % of the samples at or below it),
//! by `hdrhistogram`.
//!
//! One file, not a crate: the benches of `sandboxer`, `sandboxer-docker` and
//! `sandboxer-sqlite` include it with `#[path]` (a crate for these few lines
//! would be more Cargo than code, and the core is the domain's, not the
//! benches'). Each includer depends on `hdrhistogram` itself.
//!
//! Samples are recorded in whole microseconds (rounded) with 5 significant
//! digits: exact below 262 ms, within 0.001 % above, so a percentile is one
//! of the samples as printed. Nanoseconds would need 6 digits for that,
//! which the crate does not offer.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant decimal digits the histogram keeps (the crate's most).
const SIGFIG: u8 = 5;

#[derive(Debug, Clone)]
pub struct Samples(Histogram<u64>);

/// The longest sample kept as is (an hour); longer ones count as this.
const MAX_MICROS: u64 = 3_600_000_000;

impl Default for Samples {
    fn default() -> Self {
        // Fixed bounds: an auto-resizing histogram of 5 digits misplaces
        // samples past its first resize (2^18 us), which a test holds.
        Self(
            Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG)
                .expect("1 us to an hour at 5 significant digits"),
        )
    }
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        let micros = (d.as_nanos() + 500) / 1000;
        self.0
            .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
    }

    pub fn append(&mut self, other: Samples) {
        // Same precision on both sides and auto-resizing: cannot fail.
        self.0.add(&other.0).expect("histograms of one precision");
    }

    pub fn len(&self) -> usize {
        usize::try_from(self.0.len()).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank `p`th percentile (`p` in 0..=100).
    pub fn pct(&self, p: f64) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_micros(self.0.value_at_percentile(p)))
    }

    pub fn mean(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_secs_f64(self.0.mean() / 1e6))
    }

    pub fn max(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_micros(self.0.max()))
    }
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(ms: &[u64]) -> Samples {
        let mut s = Samples::default();
        for m in ms {
            s.push(Duration::from_millis(*m));
        }
        s
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = of(&[50, 10, 40, 20, 30]);
        assert_eq!(s.pct(50.0), Some(Duration::from_millis(30)));
        assert_eq!(s.pct(0.0), Some(Duration::from_millis(10)));
        assert_eq!(s.pct(95.0), Some(Duration::from_millis(50)));
        assert_eq!(s.pct(100.0), Some(Duration::from_millis(50)));
        assert_eq!(s.max(), Some(Duration::from_millis(50)));
        let hundred = of(&(1..=100).collect::<Vec<_>>());
        assert_eq!(hundred.pct(99.0), Some(Duration::from_millis(99)));
        assert_eq!(hundred.pct(50.0), Some(Duration::from_millis(50)));
        assert_eq!(Samples::default().pct(50.0), None);
    }

    #[test]
    fn mean_append_and_rounding_to_microseconds() {
        let mut s = of(&[10, 30]);
        s.append(of(&[20]));
        assert_eq!(s.len(), 3);
        assert_eq!(s.mean(), Some(Duration::from_millis(20)));
        let mut fine = Samples::default();
        fine.push(Duration::from_nanos(1_499));
        fine.push(Duration::from_nanos(2_500));
        assert_eq!(fine.pct(0.0), Some(Duration::from_micros(1)));
        assert_eq!(fine.max(), Some(Duration::from_micros(3)));
        assert_eq!(Samples::default().mean(), None);
    }

    #[test]
    fn slow_samples_past_the_first_bucket_keep_their_rank() {
        // Creates on a loaded machine: 240 to 380 ms, across 2^18 us.
        let s = of(&[240, 250, 275, 300, 380]);
        let near = |p: f64, ms: u64| {
            let got = s.pct(p).unwrap().as_secs_f64() * 1000.0;
            assert!(
                (got - ms as f64).abs() <= ms as f64 * 1e-4,
                "p{p}: {got} ms"
            );
        };
        near(0.0, 240);
        near(50.0, 275);
        near(100.0, 380);
    }
}
