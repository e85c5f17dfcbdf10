//! Bounded frame queue that drops the *oldest* frame when full.
//!
//! A camera produces frames at its own rate; when the board falls behind, restoring a stale
//! frame is worth less than restoring the newest, and blocking the link reader would stall
//! the camera. So a full queue evicts its oldest entry (handed back to the caller, to report
//! and to recycle its buffer) and counts it.

/// Fixed-capacity FIFO of up to `N` items (no heap: `heapless::Deque`).
#[derive(Debug)]
pub struct DropOldest<T, const N: usize> {
    items: heapless::Deque<T, N>,
    dropped: u32,
}

impl<T, const N: usize> Default for DropOldest<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> DropOldest<T, N> {
    pub const fn new() -> Self {
        Self {
            items: heapless::Deque::new(),
            dropped: 0,
        }
    }

    /// Append `item`; if the queue was full, the oldest item is evicted and returned.
    pub fn push(&mut self, item: T) -> Option<T> {
        let evicted = if self.items.is_full() {
            self.dropped = self.dropped.wrapping_add(1);
            self.items.pop_front()
        } else {
            None
        };
        // Cannot fail: there is room now. Fall back to evicting the new item rather than
        // panicking if that ever changes.
        match self.items.push_back(item) {
            Ok(()) => evicted,
            Err(item) => Some(item),
        }
    }

    /// Take the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Remove everything (e.g. the peer disconnected), oldest first, without counting drops.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        core::iter::from_fn(move || self.items.pop_front())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items evicted by [`push`](Self::push) so far.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_counts_drops() {
        let mut q = DropOldest::<u32, 3>::new();
        let evicted: Vec<_> = (1..=7).map(|i| q.push(i)).collect();
        assert_eq!(
            evicted,
            [None, None, None, Some(1), Some(2), Some(3), Some(4)]
        );
        assert_eq!(q.dropped(), 4);
        assert_eq!(q.len(), 3);
        assert_eq!((q.pop(), q.pop()), (Some(5), Some(6)));
        assert_eq!(q.push(8), None);
        assert_eq!(q.drain().collect::<Vec<_>>(), [7, 8]);
        assert!(q.is_empty());
        assert_eq!(q.dropped(), 4, "drain is not a drop");
    }
}
