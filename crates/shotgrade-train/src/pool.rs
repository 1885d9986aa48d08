//! Reusing rendered composites: a pool of the most recent ones that batches draw from.
//!
//! On this 2-core CPU, rendering a composite (drawing, shadows, degradation, resizing) costs
//! more than the background network's forward and backward pass over it. Drawing part of each
//! batch from the recently rendered composites, instead of rendering every one afresh, buys
//! more optimisation steps per hour at the price of seeing each composite a few times.
//! The same pool holds the background trainer's recent mistakes for hard-example replay.

use shotgrade_synth::SplitMix64;

/// The `capacity` most recently added items; when full, a new item replaces the oldest, so
/// the pool follows the stream and nothing stays in it for long.
#[derive(Debug, Clone)]
pub struct RecentPool<T> {
    items: Vec<T>,
    capacity: usize,
    /// Where the next item goes once the pool is full (the oldest item).
    next: usize,
}

/// Training data that can be mirrored left–right without changing its labels.
pub trait Mirror {
    /// The mirror image; `width` is the length of the rows to reverse (see [`mirror_rows`]).
    fn mirrored(&self, width: usize) -> Self;
}

impl<T> RecentPool<T> {
    pub fn new(capacity: usize) -> Self {
        RecentPool {
            items: Vec::with_capacity(capacity),
            capacity,
            next: 0,
        }
    }

    /// The pool a run with reuse factor `reuse` needs: `capacity` items when `reuse > 1`, none
    /// (every push dropped) when everything is rendered afresh.
    pub fn for_reuse(reuse: usize, capacity: usize) -> Self {
        RecentPool::new(if reuse > 1 { capacity } else { 0 })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the pool holds `capacity` items (a pool of capacity 0 never is).
    pub fn is_full(&self) -> bool {
        self.capacity > 0 && self.items.len() == self.capacity
    }

    /// Adds an item, replacing the oldest one when full; a pool of capacity 0 drops it.
    pub fn push(&mut self, item: T) {
        if self.capacity == 0 {
            return;
        }
        if self.items.len() < self.capacity {
            self.items.push(item);
        } else {
            self.items[self.next] = item;
            self.next = (self.next + 1) % self.capacity;
        }
    }

    /// A uniformly drawn item; `None` while the pool is empty.
    pub fn draw(&self, rng: &mut SplitMix64) -> Option<&T> {
        if self.items.is_empty() {
            return None;
        }
        self.items
            .get((rng.next_u64() % self.items.len() as u64) as usize)
    }
}

impl<T: Mirror + Clone> RecentPool<T> {
    /// A uniformly drawn item, mirrored with probability ½; `None` while the pool is empty
    /// (then no random number is used).
    pub fn draw_mirrored(&self, width: usize, rng: &mut SplitMix64) -> Option<T> {
        let item = self.draw(rng)?;
        Some(if rng.unit() < 0.5 {
            item.mirrored(width)
        } else {
            item.clone()
        })
    }
}

/// How many composites of a batch of `synthetic` to render afresh when each is to be used
/// `reuse` times on average: `⌈synthetic / reuse⌉`, all of them while the pool is filling or
/// when `reuse` is 1.
pub fn fresh_per_batch(synthetic: usize, reuse: usize, pool_full: bool) -> usize {
    if reuse <= 1 || !pool_full {
        synthetic
    } else {
        synthetic.div_ceil(reuse)
    }
}

/// The left–right mirror image of a channel-major (`C × H × W`) image of rows `width` long.
pub fn mirror_rows(chw: &[f32], width: usize) -> Vec<f32> {
    if width == 0 {
        return chw.to_vec();
    }
    chw.chunks(width)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pool_keeps_the_most_recent_items() {
        let mut pool = RecentPool::new(3);
        assert!(pool.is_empty() && !pool.is_full());
        let mut rng = SplitMix64::new(1);
        assert!(pool.draw(&mut rng).is_none());
        for i in 0..3 {
            pool.push(i);
        }
        assert!(pool.is_full());
        pool.push(3); // replaces 0, the oldest
        pool.push(4); // replaces 1
        let mut held: Vec<i32> = pool.items.clone();
        held.sort();
        assert_eq!(held, vec![2, 3, 4]);
        let drawn: Vec<i32> = (0..200)
            .filter_map(|_| pool.draw(&mut rng).copied())
            .collect();
        for v in [2, 3, 4] {
            assert!(drawn.contains(&v), "uniform draws reach every item: {v}");
        }
        assert!(drawn.iter().all(|v| (2..=4).contains(v)));

        let mut none = RecentPool::new(0);
        none.push(1);
        assert!(none.is_empty() && !none.is_full());
    }

    impl Mirror for Vec<f32> {
        fn mirrored(&self, width: usize) -> Self {
            mirror_rows(self, width)
        }
    }

    #[test]
    fn drawn_items_are_mirrored_about_half_the_time() {
        let mut pool = RecentPool::for_reuse(2, 1);
        let mut rng = SplitMix64::new(5);
        assert!(pool.draw_mirrored(2, &mut rng).is_none());
        pool.push(vec![1.0, 2.0]);
        let mirrored = (0..400)
            .filter_map(|_| pool.draw_mirrored(2, &mut rng))
            .filter(|v| v == &vec![2.0, 1.0])
            .count();
        assert!((150..250).contains(&mirrored), "{mirrored} of 400");
        assert!(RecentPool::<Vec<f32>>::for_reuse(1, 8).capacity == 0);
    }

    #[test]
    fn replay_buffer_stays_within_capacity_and_follows_new_mistakes() {
        // The background trainer's hard-example replay: old mistakes make way for new ones.
        let mut rng = SplitMix64::new(3);
        let mut buffer: RecentPool<f32> = RecentPool::new(4);
        assert!(buffer.draw(&mut rng).is_none(), "nothing to replay yet");
        (0..4).for_each(|i| buffer.push(i as f32));
        (0..40).for_each(|_| buffer.push(9.0));
        assert_eq!(buffer.len(), 4);
        let drawn: Vec<f32> = (0..20)
            .filter_map(|_| buffer.draw(&mut rng).copied())
            .collect();
        assert_eq!(drawn.len(), 20);
        assert!(
            drawn.iter().filter(|&&v| v == 9.0).count() >= 15,
            "new mistakes replace old ones"
        );
    }

    #[test]
    fn fresh_share_follows_the_reuse_factor() {
        assert_eq!(fresh_per_batch(24, 1, true), 24);
        assert_eq!(fresh_per_batch(24, 4, false), 24, "the pool fills first");
        assert_eq!(fresh_per_batch(24, 4, true), 6);
        assert_eq!(fresh_per_batch(24, 5, true), 5);
        assert_eq!(
            fresh_per_batch(3, 8, true),
            1,
            "at least one fresh composite"
        );
    }

    #[test]
    fn mirror_reverses_each_row_of_each_channel() {
        // Two channels of a 3 × 2 image.
        let chw = [
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
        ];
        assert_eq!(
            mirror_rows(&chw, 3),
            vec![
                3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0, 12.0, 11.0, 10.0
            ]
        );
    }

    proptest! {
        #[test]
        fn mirroring_twice_is_the_identity(
            width in 1usize..9,
            rows in 1usize..9,
            seed in any::<u64>(),
        ) {
            let mut rng = SplitMix64::new(seed);
            let img: Vec<f32> = (0..width * rows).map(|_| rng.unit()).collect();
            let once = mirror_rows(&img, width);
            prop_assert_eq!(once.len(), img.len());
            prop_assert_eq!(mirror_rows(&once, width), img);
        }
    }
}
