//! The Sluice load generator and latency harness, and the side-by-side runs against other systems.
