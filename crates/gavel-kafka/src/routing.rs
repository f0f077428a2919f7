//! Which shard owns a partition, and when a partition is paused and resumed
//! (backpressure with hysteresis), as pure logic over a [`Lane`]: anything
//! with a bounded queue that may refuse an item.
//!
//! Pausing is the last resort, not the everyday brake. librdkafka drops a
//! paused partition's prefetched messages, and a resume does not wake the
//! broker thread that fetches: when every partition it serves was paused, it
//! sleeps up to a second before fetching again. A shard that is merely
//! slower than the fetcher would pay that second over and over (it cut
//! gavel to a fifth of the passthrough rate on Apache Kafka). So the
//! consumer first waits, up to `kafka.pause_after`, for room in a full
//! shard's queue ([`Router::offer`], then again), and only a shard still
//! full after that gets its partition held and paused ([`Router::hold`]).
//!
//! No Kafka here: the [`Router`] says which partitions to pause or resume and
//! the consumer's context (`context.rs`) does it. That keeps the decisions
//! testable on a plain in-memory queue.

use std::collections::{HashMap, HashSet, VecDeque};

/// An input partition: index into the settings' inputs, and partition number.
pub(crate) type Partition = (usize, i32);

/// The shard that owns `partition` out of `shards`: a fixed function, so a
/// partition's messages always reach the same shard, in order.
pub(crate) fn shard_of((topic, partition): Partition, shards: usize) -> usize {
    // Partition numbers spread one topic over the shards; the topic index
    // staggers topics so partition 0 of each does not pile up on shard 0.
    (partition as usize).wrapping_add(topic) % shards.max(1)
}

/// Whether a shard queue with `free` of `capacity` slots free may take a
/// paused partition's messages again: only once half its queue is worked
/// off, so that a partition is not paused and resumed per message.
pub(crate) fn has_room(free: usize, capacity: usize) -> bool {
    free >= capacity.div_ceil(2)
}

/// What a [`Lane`] did with an item it was offered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer<T> {
    /// Queued.
    Taken,
    /// The queue is full; here is the item back.
    Full(T),
    /// The queue is gone (its shard stopped).
    Closed,
}

/// One shard's bounded queue, as the router sees it.
pub(crate) trait Lane {
    /// What the queue carries.
    type Item;
    /// Queues `item` if there is room, without waiting.
    fn offer(&self, item: Self::Item) -> Offer<Self::Item>;
    /// Free slots now.
    fn free(&self) -> usize;
    /// Slots in all.
    fn capacity(&self) -> usize;
}

/// What became of a routed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Queued on its shard.
    Sent,
    /// Held behind earlier held messages of its (already paused) partition.
    Held,
    /// Its shard was full: held, and its partition must now be paused.
    Pause,
    /// The shards are gone.
    Closed,
}

/// Routes messages to shard lanes, holding those of paused partitions, in
/// order, until their shard has room again.
#[derive(Debug)]
pub(crate) struct Router<L: Lane> {
    /// One lane per shard; empty once shutting down.
    lanes: Vec<L>,
    /// Messages of paused partitions, in order, waiting for room in their shard.
    held: HashMap<Partition, VecDeque<L::Item>>,
    /// Partitions paused since their last message went straight to their
    /// shard: resumed or not, they are late for backpressure, not because
    /// of the broker (a resumed partition's next fetch can take a second).
    held_back: HashSet<Partition>,
}

impl<L: Lane> Default for Router<L> {
    fn default() -> Self {
        Router { lanes: Vec::new(), held: HashMap::new(), held_back: HashSet::new() }
    }
}

impl<L: Lane> Router<L> {
    /// Installs the shard lanes.
    pub fn set_lanes(&mut self, lanes: Vec<L>) {
        self.lanes = lanes;
    }

    /// The shard lanes (empty once closed).
    pub fn lanes(&self) -> &[L] {
        &self.lanes
    }

    /// Drops every lane and held message: the shards finish and exit.
    pub fn close(&mut self) {
        self.lanes.clear();
        self.held.clear();
        self.held_back.clear();
    }

    /// Whether some partition is paused, waiting for its shard.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// How many partitions are paused.
    pub fn paused(&self) -> usize {
        self.held.len()
    }

    /// Drops what is held for `partition` (revoked: never processed, its
    /// offsets never stored). Returns whether it was paused.
    pub fn forget(&mut self, partition: Partition) -> bool {
        self.held_back.remove(&partition);
        self.held.remove(&partition).is_some()
    }

    /// Whether `partition` is held back: paused, and no message of it has
    /// gone straight to its shard since.
    pub fn held_back(&self, partition: Partition) -> bool {
        self.held_back.contains(&partition)
    }

    /// A message of `partition` went straight to its shard: returns
    /// whether the partition was held back until now.
    pub fn flows(&mut self, partition: Partition) -> bool {
        !self.held_back.is_empty() && self.held_back.remove(&partition)
    }

    /// Routes `item` of `partition` to its shard, or holds it at once: behind
    /// the partition's held messages if it is paused, or because the shard
    /// is full. The consumer waits before holding; the tests of holding do not.
    #[cfg(test)]
    pub fn route(&mut self, partition: Partition, item: L::Item) -> Routed {
        self.offer(partition, item).unwrap_or_else(|item| self.hold(partition, item))
    }

    /// Routes `item` like [`Router::route`], but gives it back when its
    /// shard is full instead of holding it, so the caller may wait for room
    /// and offer it again, or [`Router::hold`] it.
    pub fn offer(&mut self, partition: Partition, item: L::Item) -> Result<Routed, L::Item> {
        if self.lanes.is_empty() {
            return Ok(Routed::Closed);
        }
        if let Some(queue) = self.held.get_mut(&partition) {
            queue.push_back(item);
            return Ok(Routed::Held);
        }
        match self.lanes[shard_of(partition, self.lanes.len())].offer(item) {
            Offer::Taken => Ok(Routed::Sent),
            Offer::Full(item) => Err(item),
            Offer::Closed => Ok(Routed::Closed),
        }
    }

    /// Holds `item`, which its full shard refused, as the first message of
    /// `partition` to hand over once there is room: the caller pauses it.
    pub fn hold(&mut self, partition: Partition, item: L::Item) -> Routed {
        self.held.entry(partition).or_default().push_back(item);
        self.held_back.insert(partition);
        Routed::Pause
    }

    /// Hands held messages to shards that have room again (see
    /// [`has_room`]) and returns the partitions nothing is held of any more:
    /// the caller resumes them. Stops early, returning what it has, if a
    /// shard is gone.
    pub fn release(&mut self) -> Vec<Partition> {
        let mut resumed = Vec::new();
        if self.lanes.is_empty() {
            return resumed;
        }
        let Router { lanes, held, .. } = self;
        'partitions: for (&partition, queue) in held.iter_mut() {
            let lane = &lanes[shard_of(partition, lanes.len())];
            if !has_room(lane.free(), lane.capacity()) {
                continue;
            }
            while let Some(item) = queue.pop_front() {
                match lane.offer(item) {
                    Offer::Taken => {}
                    Offer::Full(item) => {
                        queue.push_front(item);
                        break;
                    }
                    Offer::Closed => break 'partitions,
                }
            }
            if queue.is_empty() {
                resumed.push(partition);
            }
        }
        for partition in &resumed {
            held.remove(partition);
        }
        resumed
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A bounded in-memory queue; `work(n)` is the shard taking n items off.
    #[derive(Debug)]
    struct Queue {
        items: RefCell<VecDeque<(Partition, u32)>>,
        capacity: usize,
    }

    impl Queue {
        fn new(capacity: usize) -> Self {
            Queue { items: RefCell::default(), capacity }
        }

        /// The shard takes up to `n` items off; their sequence numbers.
        fn work(&self, n: usize) -> Vec<u32> {
            let mut items = self.items.borrow_mut();
            let n = n.min(items.len());
            items.drain(..n).map(|(_, i)| i).collect()
        }
    }

    /// A router over one queue per capacity, with `sent` messages of
    /// partition `(0, 0)`, numbered from 0, routed to it.
    fn routed(capacities: &[usize], sent: u32) -> Router<Queue> {
        let mut router = Router::default();
        router.set_lanes(capacities.iter().map(|&c| Queue::new(c)).collect());
        for i in 0..sent {
            router.route((0, 0), ((0, 0), i));
        }
        router
    }

    impl Lane for Queue {
        type Item = (Partition, u32);

        fn offer(&self, item: Self::Item) -> Offer<Self::Item> {
            let mut items = self.items.borrow_mut();
            if items.len() >= self.capacity {
                return Offer::Full(item);
            }
            items.push_back(item);
            Offer::Taken
        }

        fn free(&self) -> usize {
            self.capacity - self.items.borrow().len()
        }

        fn capacity(&self) -> usize {
            self.capacity
        }
    }

    #[test]
    fn a_partition_always_goes_to_the_same_shard() {
        for shards in 1..8 {
            for partition in 0..32 {
                let shard = shard_of((1, partition), shards);
                assert!(shard < shards);
                assert_eq!(shard, shard_of((1, partition), shards), "a fixed function");
            }
        }
        assert_eq!(shard_of((0, 5), 0), 0, "no shards is taken as one");
    }

    #[test]
    fn partitions_spread_evenly_and_topics_are_staggered() {
        let shards = 4;
        let mut load = vec![0; shards];
        for partition in 0..16 {
            load[shard_of((0, partition), shards)] += 1;
        }
        assert_eq!(load, [4, 4, 4, 4], "one topic's partitions round-robin over the shards");
        let firsts: Vec<usize> = (0..4).map(|topic| shard_of((topic, 0), shards)).collect();
        assert_eq!(firsts, [0, 1, 2, 3], "partition 0 of each topic lands on a different shard");
    }

    #[test]
    fn room_means_half_the_queue_free() {
        assert!(!has_room(0, 4));
        assert!(!has_room(1, 4));
        assert!(has_room(2, 4));
        assert!(has_room(4, 4));
        assert!(!has_room(2, 5), "an odd queue rounds the half up");
        assert!(has_room(3, 5));
        assert!(has_room(1, 1));
    }

    #[test]
    fn a_full_shard_pauses_and_resumes_only_after_half_is_worked_off() {
        let p = (0, 0);
        let mut router = routed(&[4], 4);
        assert_eq!(router.lanes()[0].free(), 0, "four messages fill the queue");
        assert!(!router.holding());
        assert_eq!(router.route(p, (p, 4)), Routed::Pause, "the fifth message finds the queue full");
        assert_eq!(router.route(p, (p, 5)), Routed::Held, "later ones queue behind it, in order");
        assert!(router.holding());
        assert_eq!(router.paused(), 1);

        router.lanes()[0].work(1);
        assert!(router.release().is_empty(), "one slot free of four is not enough");
        assert_eq!(router.lanes()[0].free(), 1, "nothing was handed over");

        router.lanes()[0].work(1);
        assert_eq!(router.release(), [p], "half free: the held messages go, and the partition resumes");
        assert!(!router.holding());
        assert_eq!(router.lanes()[0].work(usize::MAX), [2, 3, 4, 5], "per-partition order holds across the pause");
        assert!(router.held_back(p), "resumed, but nothing fetched since");
        assert_eq!(router.route(p, (p, 6)), Routed::Sent);
        assert!(router.flows(p), "the first message that goes straight through ends it");
        assert!(!router.held_back(p) && !router.flows(p));
    }

    #[test]
    fn a_partition_forgotten_is_no_longer_held_back() {
        let p = (0, 0);
        let mut router = routed(&[1], 1);
        assert_eq!(router.route(p, (p, 1)), Routed::Pause);
        assert!(router.held_back(p));
        assert!(router.forget(p));
        assert!(!router.held_back(p));
    }

    #[test]
    fn an_offer_to_a_full_shard_comes_back_and_can_be_offered_again() {
        let p = (0, 0);
        let mut router = routed(&[2], 2);
        assert_eq!(router.offer(p, (p, 2)), Err((p, 2)), "full: the item comes back, nothing is held");
        assert!(!router.holding());
        router.lanes()[0].work(1);
        assert_eq!(router.offer(p, (p, 2)), Ok(Routed::Sent), "one slot free is enough for an offer");
        assert_eq!(router.offer(p, (p, 3)), Err((p, 3)));
        assert_eq!(router.hold(p, (p, 3)), Routed::Pause, "given up waiting: held, and the partition pauses");
        assert_eq!(router.offer(p, (p, 4)), Ok(Routed::Held), "later messages queue behind the held one");
        router.lanes()[0].work(2);
        assert_eq!(router.release(), [p]);
        assert_eq!(router.lanes()[0].work(usize::MAX), [3, 4], "order holds");
    }

    #[test]
    fn a_partition_stays_paused_while_some_of_it_is_still_held() {
        let p = (0, 0);
        let mut router = routed(&[2], 6);
        assert_eq!(router.paused(), 1);
        router.lanes()[0].work(2);
        assert!(router.release().is_empty(), "two of four held fit: still paused");
        router.lanes()[0].work(2);
        assert_eq!(router.release(), [p]);
        assert_eq!(router.lanes()[0].work(usize::MAX), [4, 5]);
    }

    #[test]
    fn other_shards_keep_flowing_and_revoked_partitions_are_forgotten() {
        let (slow, fast) = ((0, 0), (0, 1));
        let mut router = routed(&[1, 1], 1);
        assert_eq!(router.route(slow, (slow, 1)), Routed::Pause);
        assert_eq!(router.route(fast, (fast, 0)), Routed::Sent, "the other shard is not held up");
        assert!(router.forget(slow));
        assert!(!router.forget(slow));
        assert!(!router.holding());
        router.close();
        assert_eq!(router.route(fast, (fast, 1)), Routed::Closed);
    }
}
