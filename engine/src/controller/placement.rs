//! Where new partitions' replicas go: over the live brokers, balanced, and
//! rack-aware.
//!
//! Each partition's leader (its first replica) is the broker leading the
//! fewest partitions, then holding the fewest replicas, then the lowest
//! id; each further replica is the broker holding the fewest replicas
//! among those on a rack the partition has no replica on yet (any broker
//! not holding one once every rack has), so that a partition survives the
//! loss of a whole rack whenever there are as many racks as replicas. A
//! broker registered without a rack is a rack of its own. The counts
//! include the partitions placed before, in the same request.

use std::collections::BTreeSet;

use sluice_storage::NodeId;

/// A live broker as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node: NodeId,
    pub rack: Option<String>,
    /// Replicas it holds, leaders among them.
    pub replicas: usize,
    pub leaders: usize,
}

impl Candidate {
    /// The rack it counts as: its own, or one of its own.
    fn rack(&self) -> (Option<&str>, Option<NodeId>) {
        match &self.rack {
            Some(rack) => (Some(rack), None),
            None => (None, Some(self.node)),
        }
    }
}

/// `partitions` lists of `factor` distinct brokers of `candidates`, the
/// leader first; or why not (fewer live brokers than `factor`).
pub fn spread(
    mut candidates: Vec<Candidate>,
    partitions: u32,
    factor: usize,
) -> Result<Vec<Vec<NodeId>>, String> {
    if factor == 0 || factor > candidates.len() {
        return Err(format!(
            "replication factor {factor}: there are {} live brokers",
            candidates.len()
        ));
    }
    let mut placed = Vec::with_capacity(partitions as usize);
    for _ in 0..partitions {
        let leader = (0..candidates.len())
            .min_by_key(|&i| {
                let c = &candidates[i];
                (c.leaders, c.replicas, c.node)
            })
            .expect("a candidate");
        candidates[leader].leaders += 1;
        candidates[leader].replicas += 1;
        let mut chosen = vec![leader];
        while chosen.len() < factor {
            let racks: BTreeSet<_> = chosen.iter().map(|&i| candidates[i].rack()).collect();
            let free = |i: &usize| !chosen.contains(i);
            let on_new_rack = (0..candidates.len())
                .filter(free)
                .filter(|&i| !racks.contains(&candidates[i].rack()))
                .min_by_key(|&i| (candidates[i].replicas, candidates[i].node));
            let next = on_new_rack
                .or_else(|| {
                    (0..candidates.len())
                        .filter(free)
                        .min_by_key(|&i| (candidates[i].replicas, candidates[i].node))
                })
                .expect("factor is at most the candidates");
            candidates[next].replicas += 1;
            chosen.push(next);
        }
        placed.push(chosen.into_iter().map(|i| candidates[i].node).collect());
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn brokers(racks: &[(i32, Option<&str>)]) -> Vec<Candidate> {
        racks
            .iter()
            .map(|(node, rack)| Candidate {
                node: NodeId(*node),
                rack: rack.map(str::to_string),
                replicas: 0,
                leaders: 0,
            })
            .collect()
    }

    fn count<'a>(nodes: impl Iterator<Item = &'a NodeId>) -> BTreeMap<NodeId, usize> {
        let mut counts = BTreeMap::new();
        for node in nodes {
            *counts.entry(*node).or_default() += 1;
        }
        counts
    }

    #[test]
    fn one_replica_each_spreads_partitions_evenly() {
        let placed = spread(brokers(&[(1, None), (2, None), (3, None)]), 12, 1).unwrap();
        assert!(placed.iter().all(|nodes| nodes.len() == 1));
        let counts = count(placed.iter().flatten());
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [4, 4, 4]);
    }

    #[test]
    fn replicas_go_to_distinct_racks_and_leaders_balance() {
        let candidates = brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        let rack = |node: NodeId| {
            candidates
                .iter()
                .find(|c| c.node == node)
                .unwrap()
                .rack
                .clone()
                .unwrap()
        };
        let placed = spread(candidates.clone(), 60, 3).unwrap();
        for nodes in &placed {
            let racks: BTreeSet<String> = nodes.iter().map(|n| rack(*n)).collect();
            assert_eq!(racks.len(), 3, "{nodes:?} on three racks");
        }
        let leaders = count(placed.iter().map(|nodes| &nodes[0]));
        assert!(leaders.values().all(|n| *n == 10), "{leaders:?}");
        let replicas = count(placed.iter().flatten());
        assert!(replicas.values().all(|n| *n == 30), "{replicas:?}");
    }

    #[test]
    fn fewer_racks_than_replicas_uses_every_rack_then_any_broker() {
        let placed = spread(
            brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("b"))]),
            6,
            3,
        )
        .unwrap();
        for nodes in &placed {
            assert_eq!(nodes.iter().collect::<BTreeSet<_>>().len(), 3, "{nodes:?}");
        }
        let two = spread(
            brokers(&[
                (1, Some("a")),
                (2, Some("a")),
                (3, Some("b")),
                (4, Some("b")),
            ]),
            8,
            2,
        )
        .unwrap();
        for nodes in &two {
            let on_a = nodes.iter().filter(|n| n.0 <= 2).count();
            assert_eq!(on_a, 1, "{nodes:?}: one replica on each rack");
        }
    }

    #[test]
    fn counts_include_what_is_already_placed() {
        let mut candidates = brokers(&[(1, None), (2, None), (3, None)]);
        candidates[0].replicas = 5;
        candidates[0].leaders = 5;
        let placed = spread(candidates, 4, 1).unwrap();
        assert!(
            !placed.iter().flatten().any(|n| *n == NodeId(1)),
            "{placed:?}"
        );
    }

    #[test]
    fn a_factor_above_the_live_brokers_is_refused() {
        let error = spread(brokers(&[(1, None), (2, None)]), 1, 3).unwrap_err();
        assert!(error.contains("2 live brokers"), "{error}");
        assert!(spread(brokers(&[(1, None)]), 1, 0).is_err());
    }
}
