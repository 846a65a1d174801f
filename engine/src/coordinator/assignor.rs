//! The consumer protocol's assignors (KIP-848, `group.remote.assignor`):
//! pure functions from the members' subscriptions, the topics' partition
//! counts and the previous assignment to the target assignment. No I/O and
//! no group state; [`super::consumer`] calls them when the group epoch moves.

use std::collections::{BTreeMap, BTreeSet};

pub use sluice_storage::TopicId;

/// One partition of one topic.
pub type TopicPartition = (TopicId, u32);

/// Partitions by topic.
pub type Partitions = BTreeMap<TopicId, BTreeSet<u32>>;

/// The assignors served (`group.remote.assignor` on the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Assignor {
    /// Every member about the same number of partitions, over all topics;
    /// sticky.
    #[default]
    Uniform,
    /// Per topic, each subscriber a range of about the same size; sticky
    /// once assigned.
    Range,
}

impl Assignor {
    pub fn parse(name: &str) -> Option<Assignor> {
        match name {
            "uniform" => Some(Assignor::Uniform),
            "range" => Some(Assignor::Range),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// The target assignment of `members` (id, subscribed topics) over
    /// `topics` (id → partition count), starting from `previous`.
    pub fn assign(
        self,
        members: &BTreeMap<String, BTreeSet<TopicId>>,
        topics: &BTreeMap<TopicId, u32>,
        previous: &BTreeMap<String, Partitions>,
    ) -> BTreeMap<String, Partitions> {
        let assigned = match self {
            Assignor::Uniform => assign_uniform(members, topics, previous),
            Assignor::Range => assign_range(members, topics, previous),
        };
        let mut seen = BTreeSet::new();
        for (member, partitions) in &assigned {
            for partition in flatten(partitions) {
                assert!(
                    seen.insert(partition),
                    "{partition:?} assigned twice (to {member} too)"
                );
            }
        }
        assigned
    }
}

pub(super) fn flatten(partitions: &Partitions) -> impl Iterator<Item = TopicPartition> + '_ {
    partitions
        .iter()
        .flat_map(|(topic, set)| set.iter().map(move |partition| (*topic, *partition)))
}

pub(super) fn unflatten(partitions: impl IntoIterator<Item = TopicPartition>) -> Partitions {
    let mut out = Partitions::new();
    for (topic, partition) in partitions {
        out.entry(topic).or_default().insert(partition);
    }
    out
}

/// Uniform: keep every partition where it was (if its owner still
/// subscribes and it still exists), give the others to the least loaded
/// subscriber, then move partitions from the most to the least loaded
/// members while their counts differ by more than one. Each move lowers the
/// sum of the squared counts, so it ends; with the same subscriptions
/// everywhere it moves only what the balance needs.
fn assign_uniform(
    members: &BTreeMap<String, BTreeSet<TopicId>>,
    topics: &BTreeMap<TopicId, u32>,
    previous: &BTreeMap<String, Partitions>,
) -> BTreeMap<String, Partitions> {
    let mut owned: BTreeMap<&str, BTreeSet<TopicPartition>> = members
        .keys()
        .map(|member| (member.as_str(), BTreeSet::new()))
        .collect();
    let exists = |(topic, partition): &TopicPartition| {
        topics.get(topic).is_some_and(|count| partition < count)
    };
    let mut taken = BTreeSet::new();
    for (member, subscribed) in members {
        let Some(before) = previous.get(member) else {
            continue;
        };
        for partition in flatten(before) {
            if subscribed.contains(&partition.0) && exists(&partition) && taken.insert(partition) {
                owned
                    .get_mut(member.as_str())
                    .expect("a member")
                    .insert(partition);
            }
        }
    }
    // Round robin over topics for what is new: partition 0 of every topic,
    // then partition 1, ...
    let mut free: Vec<TopicPartition> = topics
        .iter()
        .filter(|(topic, _)| {
            members
                .values()
                .any(|subscribed| subscribed.contains(topic))
        })
        .flat_map(|(topic, count)| (0..*count).map(move |partition| (*topic, partition)))
        .filter(|partition| !taken.contains(partition))
        .collect();
    free.sort_by_key(|(topic, partition)| (*partition, *topic));
    for partition in free {
        let least = members
            .iter()
            .filter(|(_, subscribed)| subscribed.contains(&partition.0))
            .map(|(member, _)| member.as_str())
            .min_by_key(|member| (owned[member].len(), *member))
            .expect("only subscribed topics are assigned");
        owned.get_mut(least).expect("a member").insert(partition);
    }
    while let Some((from, to, partition)) = best_move(members, &owned) {
        owned.get_mut(from).expect("a member").remove(&partition);
        owned.get_mut(to).expect("a member").insert(partition);
    }
    owned
        .into_iter()
        .map(|(member, partitions)| (member.to_string(), unflatten(partitions)))
        .collect()
}

/// The move from a member with the most partitions to one with at least two
/// fewer that subscribes to one of them, if any.
fn best_move<'a>(
    members: &BTreeMap<String, BTreeSet<TopicId>>,
    owned: &BTreeMap<&'a str, BTreeSet<TopicPartition>>,
) -> Option<(&'a str, &'a str, TopicPartition)> {
    let mut by_load: Vec<(&'a str, usize)> = owned
        .iter()
        .map(|(member, partitions)| (*member, partitions.len()))
        .collect();
    by_load.sort_by_key(|(member, load)| (std::cmp::Reverse(*load), *member));
    for (heavy, heavy_load) in &by_load {
        for (light, light_load) in by_load.iter().rev() {
            if *light_load + 1 >= *heavy_load {
                break;
            }
            let subscribed = &members[*light];
            if let Some(partition) = owned[heavy]
                .iter()
                .rev()
                .find(|(topic, _)| subscribed.contains(topic))
            {
                return Some((heavy, light, *partition));
            }
        }
    }
    None
}

/// Range: per topic, its subscribers (by member id) share its partitions,
/// each `count / subscribers` and the first `count % subscribers` one more.
/// The first time in contiguous ranges; after that each member keeps what it
/// had up to its share and the rest is handed out in order.
fn assign_range(
    members: &BTreeMap<String, BTreeSet<TopicId>>,
    topics: &BTreeMap<TopicId, u32>,
    previous: &BTreeMap<String, Partitions>,
) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = members
        .keys()
        .map(|member| (member.clone(), Partitions::new()))
        .collect();
    for (topic, count) in topics {
        let subscribers: Vec<&str> = members
            .iter()
            .filter(|(_, subscribed)| subscribed.contains(topic))
            .map(|(member, _)| member.as_str())
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let count = *count as usize;
        let base = count / subscribers.len();
        let mut extra = count % subscribers.len();
        let had: Vec<Vec<u32>> = subscribers
            .iter()
            .map(|member| {
                previous
                    .get(*member)
                    .and_then(|partitions| partitions.get(topic))
                    .map(|set| {
                        set.iter()
                            .copied()
                            .filter(|p| (*p as usize) < count)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut shares: Vec<Vec<u32>> = vec![Vec::new(); subscribers.len()];
        if had.iter().all(Vec::is_empty) {
            let mut next = 0u32;
            for (index, share) in shares.iter_mut().enumerate() {
                let size = base + usize::from(index < extra);
                share.extend(next..next + size as u32);
                next += size as u32;
            }
        } else {
            let mut taken = BTreeSet::new();
            for (share, had) in shares.iter_mut().zip(&had) {
                for partition in had.iter().take(base) {
                    if taken.insert(*partition) {
                        share.push(*partition);
                    }
                }
            }
            for (share, had) in shares.iter_mut().zip(&had) {
                if extra == 0 {
                    break;
                }
                if share.len() == base {
                    if let Some(partition) = had.iter().skip(base).find(|p| !taken.contains(*p)) {
                        taken.insert(*partition);
                        share.push(*partition);
                        extra -= 1;
                    }
                }
            }
            let mut free = (0..count as u32).filter(|p| !taken.contains(p));
            for share in shares.iter_mut() {
                while share.len() < base {
                    share.push(free.next().expect("enough partitions for every share"));
                }
            }
            for share in shares.iter_mut() {
                if extra == 0 {
                    break;
                }
                if share.len() == base {
                    share.push(free.next().expect("a partition for every extra"));
                    extra -= 1;
                }
            }
            assert!(free.next().is_none(), "{topic:?}: a partition left out");
        }
        for (member, share) in subscribers.iter().zip(shares) {
            if !share.is_empty() {
                out.get_mut(*member)
                    .expect("a member")
                    .insert(*topic, share.into_iter().collect());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const T1: TopicId = TopicId(1);
    const T2: TopicId = TopicId(2);

    fn members(subscriptions: &[(&str, &[TopicId])]) -> BTreeMap<String, BTreeSet<TopicId>> {
        subscriptions
            .iter()
            .map(|(id, topics)| (id.to_string(), topics.iter().copied().collect()))
            .collect()
    }

    fn count(partitions: &Partitions) -> usize {
        partitions.values().map(BTreeSet::len).sum()
    }

    fn counts(assignment: &BTreeMap<String, Partitions>) -> Vec<usize> {
        assignment.values().map(count).collect()
    }

    fn all_partitions(assignment: &BTreeMap<String, Partitions>) -> BTreeSet<TopicPartition> {
        assignment.values().flat_map(flatten).collect()
    }

    /// Partitions whose owner differs between two assignments (present in
    /// both).
    fn moved(before: &BTreeMap<String, Partitions>, after: &BTreeMap<String, Partitions>) -> usize {
        let owner = |assignment: &BTreeMap<String, Partitions>| -> HashMap<TopicPartition, String> {
            assignment
                .iter()
                .flat_map(|(member, partitions)| flatten(partitions).map(|p| (p, member.clone())))
                .collect()
        };
        let (before, after) = (owner(before), owner(after));
        before
            .iter()
            .filter(|(partition, member)| after.get(*partition).is_some_and(|now| now != *member))
            .count()
    }

    #[test]
    fn uniform_balances_and_moves_only_what_it_must() {
        let topics: BTreeMap<TopicId, u32> = [(T1, 12)].into();
        let three = members(&[("a", &[T1]), ("b", &[T1]), ("c", &[T1])]);
        let first = Assignor::Uniform.assign(&three, &topics, &BTreeMap::new());
        assert_eq!(counts(&first), vec![4, 4, 4]);
        assert_eq!(all_partitions(&first).len(), 12);

        let four = members(&[("a", &[T1]), ("b", &[T1]), ("c", &[T1]), ("d", &[T1])]);
        let second = Assignor::Uniform.assign(&four, &topics, &first);
        assert_eq!(counts(&second), vec![3, 3, 3, 3]);
        assert_eq!(moved(&first, &second), 3, "{first:?} → {second:?}");

        // d leaves: only its 3 partitions move.
        let third = Assignor::Uniform.assign(&three, &topics, &second);
        assert_eq!(counts(&third), vec![4, 4, 4]);
        for member in ["a", "b", "c"] {
            let kept: BTreeSet<_> = flatten(&second[member]).collect();
            let now: BTreeSet<_> = flatten(&third[member]).collect();
            assert!(kept.is_subset(&now), "{member} lost partitions");
        }
        assert_eq!(moved(&second, &third), 3);
    }

    #[test]
    fn uniform_spreads_topics_and_respects_subscriptions() {
        let topics: BTreeMap<TopicId, u32> = [(T1, 4), (T2, 3)].into();
        let mixed = members(&[("a", &[T1, T2]), ("b", &[T1]), ("c", &[T2])]);
        let assigned = Assignor::Uniform.assign(&mixed, &topics, &BTreeMap::new());
        assert_eq!(all_partitions(&assigned).len(), 7);
        assert!(!assigned["b"].contains_key(&T2));
        assert!(!assigned["c"].contains_key(&T1));
        let loads = counts(&assigned);
        assert!(
            loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1,
            "{loads:?}"
        );
        // Unsubscribing from T2 takes T2 away from a only.
        let fewer = members(&[("a", &[T1]), ("b", &[T1]), ("c", &[T2])]);
        let after = Assignor::Uniform.assign(&fewer, &topics, &assigned);
        assert_eq!(flatten(&after["c"]).count(), 3);
        assert!(after["a"].keys().all(|topic| *topic == T1));
    }

    #[test]
    fn range_gives_ranges_per_topic_then_sticks() {
        let topics: BTreeMap<TopicId, u32> = [(T1, 12), (T2, 5)].into();
        let three = members(&[("a", &[T1, T2]), ("b", &[T1, T2]), ("c", &[T1])]);
        let first = Assignor::Range.assign(&three, &topics, &BTreeMap::new());
        assert_eq!(first["a"][&T1], (0..4).collect());
        assert_eq!(first["b"][&T1], (4..8).collect());
        assert_eq!(first["c"][&T1], (8..12).collect());
        assert_eq!(first["a"][&T2], (0..3).collect());
        assert_eq!(first["b"][&T2], (3..5).collect());

        let four = members(&[
            ("a", &[T1, T2]),
            ("b", &[T1, T2]),
            ("c", &[T1]),
            ("d", &[T1]),
        ]);
        let second = Assignor::Range.assign(&four, &topics, &first);
        assert_eq!(moved(&first, &second), 3, "{second:?}");
        assert!(second
            .values()
            .all(|p| p.get(&T1).map_or(0, BTreeSet::len) == 3));
        assert_eq!(second["a"][&T2], first["a"][&T2]);
        assert_eq!(all_partitions(&second).len(), 17);
    }
}
