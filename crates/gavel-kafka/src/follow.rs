//! (pure) What a member does with each message under
//! [`StateScope::Replicated`](crate::StateScope): every member reads every
//! input partition into its state, in the log's order, and publishes only
//! for the partitions the group assigns it.
//!
//! A message is one of three things to a member:
//!
//! - **publish**: its partition is this member's and the message is at or
//!   after the offset the member took the partition over at (the group's
//!   committed offset then): process it and produce its outputs;
//! - **warm**: its outputs are someone's already (it is before the group's
//!   committed offset as last known): feed state only;
//! - **hold**: another member owns it and may not have published it yet:
//!   process it and keep its outputs in the partition's *tail* until the
//!   group's committed offset passes it.
//!
//! When a partition comes to this member, the tail's outputs from the
//! offset it takes the partition over at are published first, so nothing
//! between the last owner's commit and this member's position is lost.
//! The tail is bounded in bytes; a partition whose tail lost outputs for
//! room and is then taken over below them is a [`Gap`], which stops the
//! member (it restarts, warming up from the log and publishing from the
//! committed offset) rather than skip them.

use std::collections::{HashMap, VecDeque};

use crate::order::Lane;

/// What to do with one message ([module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Process and produce.
    Publish,
    /// Feed state only.
    Warm,
    /// Process and keep the outputs in the tail.
    Hold,
}

/// A partition taken over below outputs its tail dropped for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The partition.
    pub lane: Lane,
    /// The offset it was taken over at.
    pub from: i64,
    /// The last offset whose outputs were dropped.
    pub lost: i64,
}

/// One partition's outputs held for a member that may not have published them.
struct Tail<T> {
    /// `(offset, outputs, bytes)` in offset order.
    held: VecDeque<(i64, T, usize)>,
    /// The last offset whose outputs were dropped for room, if any.
    lost: Option<i64>,
}

impl<T> Default for Tail<T> {
    fn default() -> Self {
        Tail { held: VecDeque::new(), lost: None }
    }
}

/// The member's view of every partition ([module docs](self)).
pub(crate) struct Follow<T> {
    /// Partitions this member publishes for, each with the first offset
    /// it publishes.
    owned: HashMap<Lane, i64>,
    /// For the others: the group's committed offset as last known.
    committed: HashMap<Lane, i64>,
    /// The last offset fed into state, per partition.
    positions: HashMap<Lane, i64>,
    /// Outputs held, per partition not owned.
    tails: HashMap<Lane, Tail<T>>,
    /// Bytes held in every tail together.
    bytes: usize,
    /// Bytes held at most.
    limit: usize,
}

impl<T> Follow<T> {
    /// A member that owns nothing yet and holds at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Follow {
            owned: HashMap::new(),
            committed: HashMap::new(),
            positions: HashMap::new(),
            tails: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// Reading `lane` starts at `start`.
    pub fn start(&mut self, lane: Lane, start: i64) {
        self.positions.insert(lane, start - 1);
    }

    /// The group's committed offset of `lane` is `offset` (or later): held
    /// outputs before it are published, and later messages before it are
    /// warm.
    pub fn committed(&mut self, lane: Lane, offset: i64) {
        if self.owned.contains_key(&lane) {
            return;
        }
        let known = self.committed.entry(lane).or_insert(offset);
        *known = (*known).max(offset);
        if let Some(tail) = self.tails.get_mut(&lane) {
            while tail.held.front().is_some_and(|(o, _, _)| *o < offset) {
                if let Some((_, _, size)) = tail.held.pop_front() {
                    self.bytes -= size;
                }
            }
        }
    }

    /// What to do with the message at `offset` of `lane`, which is fed into
    /// state next.
    pub fn role(&mut self, lane: Lane, offset: i64) -> Role {
        self.positions.insert(lane, offset);
        match self.owned.get(&lane) {
            Some(&from) if offset >= from => Role::Publish,
            Some(_) => Role::Warm,
            // Unknown: someone may still have to publish it.
            None => match self.committed.get(&lane) {
                Some(&committed) if offset < committed => Role::Warm,
                _ => Role::Hold,
            },
        }
    }

    /// Keeps the outputs of a held message of `size` bytes, dropping the
    /// oldest of its partition while over the limit.
    pub fn hold(&mut self, lane: Lane, offset: i64, outputs: T, size: usize) {
        let tail = self.tails.entry(lane).or_default();
        tail.held.push_back((offset, outputs, size));
        self.bytes += size;
        while self.bytes > self.limit {
            let Some((dropped, _, size)) = tail.held.pop_front() else { break };
            self.bytes -= size;
            tail.lost = Some(dropped);
        }
    }

    /// `lane` is this member's from `from` on: the held outputs from there,
    /// in offset order, to publish before anything else of it, or the gap
    /// that makes that impossible.
    pub fn own(&mut self, lane: Lane, from: i64) -> Result<Vec<T>, Gap> {
        self.owned.insert(lane, from);
        self.committed.remove(&lane);
        let Some(tail) = self.tails.remove(&lane) else { return Ok(Vec::new()) };
        self.bytes -= tail.held.iter().map(|(_, _, size)| size).sum::<usize>();
        if let Some(lost) = tail.lost.filter(|&lost| lost >= from) {
            return Err(Gap { lane, from, lost });
        }
        Ok(tail.held.into_iter().filter(|(offset, _, _)| *offset >= from).map(|(_, outputs, _)| outputs).collect())
    }

    /// `lane` is no longer this member's: what it published is committed
    /// (the revoke commits before it returns), and later messages are held.
    pub fn disown(&mut self, lane: Lane) {
        if self.owned.remove(&lane).is_some() {
            let next = self.positions.get(&lane).map_or(0, |p| p + 1);
            self.committed.insert(lane, next);
        }
    }

    /// Whether state has reached, on every partition, where the group is:
    /// the offset this member publishes from on its own partitions, the
    /// group's committed offset as last known on the others. `end` gives a
    /// partition's log end where known, so one whose last records before
    /// that offset are not messages (transaction markers) counts once its
    /// log is read.
    pub fn caught_up(&self, end: impl Fn(Lane) -> Option<i64>) -> bool {
        let targets = self.owned.iter().chain(&self.committed);
        targets.into_iter().all(|(lane, &target)| {
            let position = self.positions.get(lane).copied().unwrap_or(-1);
            // One record at the end may be a marker no message follows.
            position + 1 >= target || end(*lane).is_some_and(|high| high <= position + 2)
        })
    }

    /// Bytes held.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Lane = (0, 0);
    const Q: Lane = (0, 1);

    /// A member that joins late: what the group committed is warm, the rest
    /// of another's partition is held until its commits pass it.
    #[test]
    fn before_the_groups_commit_is_warm_and_after_it_held_until_committed() {
        let mut follow = Follow::new(1 << 20);
        follow.start(P, 0);
        follow.committed(P, 3);
        let roles: Vec<Role> = (0..6).map(|o| follow.role(P, o)).collect();
        assert_eq!(roles, [Role::Warm, Role::Warm, Role::Warm, Role::Hold, Role::Hold, Role::Hold]);
        for offset in 3..6 {
            follow.hold(P, offset, offset, 10);
        }
        follow.committed(P, 5);
        assert_eq!(follow.held_bytes(), 10, "offsets 3 and 4 are published by their owner");
        assert_eq!(follow.role(P, 6), Role::Hold);
    }

    /// Taking a partition over publishes the held outputs from the
    /// committed offset on, then everything after.
    #[test]
    fn a_partition_taken_over_publishes_its_tail_from_the_committed_offset() {
        let mut follow = Follow::new(1 << 20);
        follow.start(P, 0);
        follow.committed(P, 0);
        for offset in 0..5 {
            assert_eq!(follow.role(P, offset), Role::Hold);
            follow.hold(P, offset, offset, 1);
        }
        follow.committed(P, 2);
        assert_eq!(follow.own(P, 3), Ok(vec![3, 4]));
        assert_eq!(follow.held_bytes(), 0);
        assert_eq!(follow.role(P, 5), Role::Publish);
        assert!(follow.caught_up(|_| None));
    }

    /// A member that owns a partition and is behind its committed offset
    /// warms up to it, publishing nothing twice, and is caught up there.
    #[test]
    fn an_owner_behind_the_commit_warms_up_to_it_and_is_then_caught_up() {
        let mut follow: Follow<i64> = Follow::new(1 << 20);
        follow.start(P, 0);
        assert_eq!(follow.own(P, 3), Ok(vec![]));
        assert!(!follow.caught_up(|_| None));
        assert_eq!(follow.role(P, 0), Role::Warm);
        assert_eq!(follow.role(P, 1), Role::Warm);
        assert!(!follow.caught_up(|_| Some(10)));
        assert!(follow.caught_up(|_| Some(3)), "the record at 2 is a marker at the log's end");
        assert_eq!(follow.role(P, 2), Role::Warm);
        assert!(follow.caught_up(|_| None));
        assert_eq!(follow.role(P, 3), Role::Publish);
    }

    /// A member that has not joined the group yet has caught up once its
    /// state reaches the group's committed offsets on every partition.
    #[test]
    fn a_member_outside_the_group_is_caught_up_at_the_groups_commits() {
        let mut follow: Follow<i64> = Follow::new(1 << 20);
        follow.start(P, 0);
        follow.start(Q, 0);
        follow.committed(P, 2);
        follow.committed(Q, 0);
        assert!(!follow.caught_up(|_| None));
        follow.role(P, 0);
        follow.role(P, 1);
        assert!(follow.caught_up(|_| None));
        follow.committed(Q, 1);
        assert!(!follow.caught_up(|_| None), "the group moved on");
    }

    /// Giving a partition up holds what comes after what was published.
    #[test]
    fn a_partition_given_up_is_held_from_after_its_last_published_message() {
        let mut follow: Follow<i64> = Follow::new(1 << 20);
        follow.start(Q, 0);
        assert_eq!(follow.own(Q, 0), Ok(vec![]));
        assert_eq!(follow.role(Q, 0), Role::Publish);
        assert_eq!(follow.role(Q, 1), Role::Publish);
        follow.disown(Q);
        assert_eq!(follow.role(Q, 2), Role::Hold);
        follow.hold(Q, 2, 2, 1);
        assert_eq!(follow.own(Q, 2), Ok(vec![2]), "taken back at its own commit");
    }

    /// Outputs dropped for room are a gap only when the partition is taken
    /// over below them.
    #[test]
    fn outputs_dropped_for_room_are_a_gap_when_taken_over_below_them() {
        let mut follow = Follow::new(3);
        follow.start(P, 0);
        follow.start(Q, 0);
        for offset in 0..5 {
            follow.role(P, offset);
            follow.hold(P, offset, offset, 1);
        }
        assert_eq!(follow.held_bytes(), 3);
        assert_eq!(follow.own(P, 1), Err(Gap { lane: P, from: 1, lost: 1 }));
        for offset in 0..5 {
            follow.role(Q, offset);
            follow.hold(Q, offset, offset, 1);
        }
        assert_eq!(follow.own(Q, 2), Ok(vec![2, 3, 4]), "only what the owner committed was dropped");
    }
}
