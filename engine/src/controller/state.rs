//! The controller's own state, on shard 0: its metadata log and the turn
//! that makes changes run one at a time. Apart from the code that changes
//! metadata (the parent module), so that a shard can hold it.

use std::cell::RefCell;

use crate::cluster_metadata::MetadataLog;

/// Lives on shard 0.
pub struct Controller {
    pub(super) log: RefCell<MetadataLog>,
    /// One change at a time.
    pub(super) lock: glommio::sync::Semaphore,
}

impl Controller {
    pub fn new(log: MetadataLog) -> Controller {
        Controller {
            log: RefCell::new(log),
            lock: glommio::sync::Semaphore::new(1),
        }
    }
}
