//! A bounded byte ring with absolute offsets: a stream's bytes are numbered
//! from 0 as they come; the ring holds the last `capacity` of them. Memory
//! grows with the data, never past the capacity.

use sandboxer_agent_proto::StreamRange;

/// The first allocation; small streams stay small.
const MIN_ALLOC: usize = 4096;

pub struct Ring {
    capacity: usize,
    /// The byte at offset `o` (`start <= o < end`) is at `o % capacity`.
    /// Shorter than the capacity only while nothing has wrapped yet.
    buf: Vec<u8>,
    end: u64,
}

impl Ring {
    /// `capacity` is at least 1.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            buf: Vec::new(),
            end: 0,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// The oldest offset still held.
    pub fn start(&self) -> u64 {
        self.end.saturating_sub(self.capacity())
    }

    /// Bytes the stream has produced in all.
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn range(&self) -> StreamRange {
        StreamRange {
            start: self.start(),
            end: self.end,
        }
    }

    /// Appends `data`, dropping the oldest bytes past the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let cap = self.capacity;
        let total = self.end + data.len() as u64;
        // Only the last `cap` bytes can stay.
        let data = &data[data.len().saturating_sub(cap)..];
        if total <= cap as u64 {
            // Not full yet: `buf` is exactly the stream so far.
            let need = total as usize;
            if need > self.buf.capacity() {
                let target = need.max(self.buf.capacity() * 2).max(MIN_ALLOC).min(cap);
                self.buf.reserve_exact(target - self.buf.len());
            }
            self.buf.extend_from_slice(data);
            self.end = total;
            return;
        }
        if self.buf.len() < cap {
            // `reserve_exact` first: `resize` alone may round up past `cap`.
            self.buf.reserve_exact(cap - self.buf.len());
            self.buf.resize(cap, 0);
        }
        let mut at = total - data.len() as u64;
        let mut rest = data;
        while !rest.is_empty() {
            let pos = (at % cap as u64) as usize;
            let n = rest.len().min(cap - pos);
            self.buf[pos..pos + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            at += n as u64;
        }
        self.end = total;
    }

    /// Up to `max` bytes from `from`, which must be within `start..=end`.
    pub fn read(&self, from: u64, max: usize) -> Vec<u8> {
        debug_assert!(self.start() <= from && from <= self.end);
        let n = usize::try_from(self.end - from).map_or(max, |held| held.min(max));
        let mut out = Vec::with_capacity(n);
        let mut at = from;
        while out.len() < n {
            let pos = (at % self.capacity()) as usize;
            let take = (n - out.len()).min(self.buf.len() - pos);
            out.extend_from_slice(&self.buf[pos..pos + take]);
            at += take as u64;
        }
        out
    }

    /// Bytes allocated, for tests.
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn holds_everything_until_full() {
        let mut ring = Ring::new(10);
        ring.push(b"hello");
        assert_eq!((ring.start(), ring.end()), (0, 5));
        assert_eq!(ring.read(0, 100), b"hello");
        assert_eq!(ring.read(2, 2), b"ll");
        assert_eq!(ring.read(5, 100), b"");
    }

    #[test]
    fn keeps_the_last_capacity_bytes_at_their_absolute_offsets() {
        let data = stream(10_000);
        for cap in [1, 7, 64, 4096, 9_999, 10_000, 20_000] {
            for chunk in [1, 3, 100, 5_000, 10_000] {
                let mut ring = Ring::new(cap);
                for part in data.chunks(chunk) {
                    ring.push(part);
                    let (start, end) = (ring.start(), ring.end());
                    assert!(end - start <= cap as u64);
                    let held = ring.read(start, usize::MAX);
                    assert_eq!(held, &data[start as usize..end as usize], "cap {cap}");
                }
                assert_eq!(ring.end(), 10_000);
                assert_eq!(ring.start(), 10_000u64.saturating_sub(cap as u64));
            }
        }
    }

    #[test]
    fn allocates_with_the_data_and_never_past_the_capacity() {
        let mut ring = Ring::new(100_000);
        ring.push(b"x");
        assert!(ring.allocated() <= MIN_ALLOC);
        for _ in 0..50 {
            ring.push(&[7u8; 10_000]);
            assert!(ring.allocated() <= 100_000, "{}", ring.allocated());
        }
        let mut small = Ring::new(10);
        small.push(&[1u8; 1000]);
        assert!(small.allocated() <= 10);
    }
}
