//! The replication protocol of Sluice and its state machines: leader, follower, high watermark, in-sync set, leader epochs.
