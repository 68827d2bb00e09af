//! Latency samples and their percentiles (nearest rank).

use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn append(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank `p`th percentile (`p` in 0..=100): the smallest
    /// sample with at least `p` % of the samples at or below it.
    pub fn pct(&self, p: f64) -> Option<Duration> {
        if self.is_empty() {
            return None;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, n) - 1])
    }

    pub fn mean(&self) -> Option<Duration> {
        let n = u32::try_from(self.0.len()).ok().filter(|n| *n > 0)?;
        Some(self.0.iter().sum::<Duration>() / n)
    }

    pub fn max(&self) -> Option<Duration> {
        self.0.iter().max().copied()
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
}
