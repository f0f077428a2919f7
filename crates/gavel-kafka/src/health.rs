//! Whether the group is served, seen from outside the rebalance protocol:
//! every [`PROBE_INTERVAL`] a consumer that never joins the group reads
//! each subscribed partition's high watermark and the group's committed
//! offset. The lag of every subscribed partition is reported from it (the
//! consumer's own statistics only cover the partitions it owns), and
//! [`Judge`] decides whether this instance is healthy:
//!
//! - it has lost the broker: [`FAILED_PROBES`] probes in a row failed;
//! - or the group is stuck: this instance owns no partition while the
//!   topics hold unconsumed messages and no committed offset of the group
//!   has moved for [`STUCK_PROBES`] probes — nobody is consuming them.
//!
//! Readiness is then "partitions assigned and warmed up, and healthy"
//! (`context.rs`). An idle standby member (more instances than partitions)
//! stays ready as long as the owners commit.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::Result;
use crate::routing::Partition;
use crate::settings::{FirstStart, KafkaSettings};

/// How often the group's lag is probed.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Failed probes in a row that mean the broker is lost.
pub(crate) const FAILED_PROBES: u32 = 3;

/// Probes in a row with unconsumed messages, no owned partition and no
/// committed offset moving, that mean the group is stuck.
pub(crate) const STUCK_PROBES: u32 = 3;

/// One probe: each subscribed partition's lag, and the sum of the group's
/// committed offsets (to tell whether anyone is committing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    /// `(input topic index, partition, lag)` for every subscribed partition.
    pub lags: Vec<(usize, i32, i64)>,
    /// Sum of the committed offsets.
    pub committed: i64,
}

/// Reads every subscribed partition's lag for the settings' group.
pub(crate) fn probe(consumer: &BaseConsumer, settings: &KafkaSettings, timeout: Duration) -> Result<Probe> {
    let mut tpl = TopicPartitionList::new();
    let mut partitions = Vec::new();
    for (index, input) in settings.inputs.iter().enumerate() {
        let metadata = consumer.fetch_metadata(Some(&input.name), timeout)?;
        for topic in metadata.topics().iter().filter(|t| t.name() == input.name) {
            for p in topic.partitions() {
                tpl.add_partition(&input.name, p.id());
                partitions.push((index, p.id()));
            }
        }
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    let mut probe = Probe { lags: Vec::with_capacity(partitions.len()), committed: 0 };
    for (index, partition) in partitions {
        let name = &settings.inputs[index].name;
        let (low, high) = consumer.fetch_watermarks(name, partition, timeout)?;
        let lag = match committed.find_partition(name, partition).map(|e| e.offset()) {
            Some(Offset::Offset(at)) => {
                probe.committed += at;
                (high - at.max(low)).max(0)
            }
            // Never committed: a member starts it at its end, or reads its
            // whole retained history.
            _ => match settings.first_start {
                FirstStart::End => 0,
                FirstStart::Earliest => high - low,
            },
        };
        probe.lags.push((index, partition, lag));
    }
    Ok(probe)
}

/// The health verdict over successive probes (pure, so it is testable).
#[derive(Debug, Default)]
pub(crate) struct Judge {
    failures: u32,
    stuck: u32,
    last_committed: Option<i64>,
}

impl Judge {
    /// Takes one probe (or its failure) and how many partitions this
    /// instance owns; returns whether the instance is healthy.
    pub fn observe(&mut self, probe: Option<&Probe>, owned: usize) -> bool {
        let Some(probe) = probe else {
            self.failures += 1;
            return self.failures < FAILED_PROBES;
        };
        self.failures = 0;
        let unconsumed = probe.lags.iter().any(|&(_, _, lag)| lag > 0);
        let moving = self.last_committed != Some(probe.committed);
        self.last_committed = Some(probe.committed);
        self.stuck = if owned == 0 && unconsumed && !moving { self.stuck + 1 } else { 0 };
        self.stuck < STUCK_PROBES
    }
}

/// Why one user's events of different input topics may be owned by
/// different members, if they may: the topics' partition counts differ, or
/// the assignor is not `range` (which gives each member the same partition
/// numbers of every topic). `counts` is the partition count per input
/// topic; `strategy` the configured `partition.assignment.strategy`.
pub(crate) fn not_copartitioned(counts: &[(&str, usize)], strategy: Option<&str>) -> Option<String> {
    if let Some(strategy) = strategy.filter(|s| !s.trim().starts_with("range")) {
        return Some(format!(
            "partition.assignment.strategy `{strategy}` (not range): a user's events of different input topics \
             go to different members"
        ));
    }
    let first = counts.first()?.1;
    if counts.iter().all(|&(_, n)| n == first) {
        return None;
    }
    let listed = counts.iter().map(|(topic, n)| format!("{topic} {n}")).collect::<Vec<_>>().join(", ");
    Some(format!(
        "input topics with different partition counts ({listed}): a user's events of different topics go to \
         different members"
    ))
}

/// The lags to report from a probe: those of the partitions this instance
/// does not own (the consumer's statistics report the owned ones, fresher).
pub(crate) fn unowned_lags<'a>(
    probe: &'a Probe,
    owned: &'a HashSet<Partition>,
) -> impl Iterator<Item = (usize, i32, i64)> + 'a {
    probe.lags.iter().copied().filter(move |&(topic, partition, _)| !owned.contains(&(topic, partition)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(lag: i64, committed: i64) -> Probe {
        Probe { lags: vec![(0, 0, lag), (0, 1, 0)], committed }
    }

    #[test]
    fn a_lost_broker_is_unhealthy_after_three_failed_probes() {
        let mut judge = Judge::default();
        assert!(judge.observe(Some(&probe(0, 10)), 1));
        assert!(judge.observe(None, 1));
        assert!(judge.observe(None, 1));
        assert!(!judge.observe(None, 1), "three failures in a row");
        assert!(judge.observe(Some(&probe(0, 10)), 1), "healthy again with the broker");
    }

    #[test]
    fn a_stuck_group_is_unhealthy_but_an_idle_standby_is_not() {
        // Owning nothing while others consume and commit: a standby, fine.
        let mut standby = Judge::default();
        for n in 0..10 {
            assert!(standby.observe(Some(&probe(5, 100 + n)), 0));
        }
        // Owning nothing, data waiting, nobody committing: stuck.
        let mut stuck = Judge::default();
        let verdicts: Vec<bool> = (0..5).map(|_| stuck.observe(Some(&probe(5, 100)), 0)).collect();
        assert_eq!(verdicts, [true, true, true, false, false]);
        // Owning partitions: this instance is the consumer, not stuck.
        let mut owner = Judge::default();
        assert!((0..10).all(|_| owner.observe(Some(&probe(5, 100)), 2)));
        // Nothing waiting: nothing to consume, nothing stuck.
        let mut idle = Judge::default();
        assert!((0..10).all(|_| idle.observe(Some(&probe(0, 100)), 0)));
    }

    #[test]
    fn users_meet_in_one_member_only_with_equal_partition_counts_and_the_range_assignor() {
        assert_eq!(not_copartitioned(&[("bids", 4), ("chat", 4)], None), None);
        assert_eq!(not_copartitioned(&[("bids", 4)], Some("range,roundrobin")), None);
        assert_eq!(not_copartitioned(&[], None), None);
        let counts = not_copartitioned(&[("bids", 4), ("chat", 2)], None).unwrap();
        assert!(counts.contains("(bids 4, chat 2)"), "{counts}");
        let sticky = not_copartitioned(&[("bids", 4), ("chat", 4)], Some("cooperative-sticky")).unwrap();
        assert!(sticky.contains("`cooperative-sticky` (not range)"), "{sticky}");
    }

    #[test]
    fn unowned_lags_leave_the_owned_partitions_to_the_consumer() {
        let owned: HashSet<Partition> = [(0, 1)].into_iter().collect();
        let p = Probe { lags: vec![(0, 0, 3), (0, 1, 4)], committed: 0 };
        assert_eq!(unowned_lags(&p, &owned).collect::<Vec<_>>(), [(0, 0, 3)]);
    }
}
