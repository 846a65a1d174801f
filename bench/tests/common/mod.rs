//! What the harness's real-run tests check of every driver, and how they
//! start the peer servers they run against.

#![allow(dead_code)]

use std::{
    io::Write,
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sluice_bench::RunResult;

/// A 500/s run of 2 s measured: no errors, about 1,000 records produced and
/// consumed within the window, and every record intended in the window
/// measured both ways.
///
/// "About": give or take those crossing the window's edges, and a slow
/// machine's stalls. The load is open-loop, so a harness stalled at the end
/// of the warm-up sends what it owes once it runs again, inside the window
/// (1,111 seen on a loaded 2-core machine after a 320 ms stall); the window
/// never holds twice the rate.
pub fn assert_a_clean_short_run(result: &RunResult) {
    assert_eq!(result.errors.total(), 0, "{:?}", result.errors);
    for (name, throughput) in [
        ("produced", &result.produced),
        ("consumed", &result.consumed),
    ] {
        assert!(
            (750..=1250).contains(&throughput.records),
            "{name} {} records in the window",
            throughput.records
        );
        assert!(throughput.mb_per_s > 0.0);
    }
    let ack = &result.produce_ack_latency;
    let e2e = &result.end_to_end_latency;
    assert!(
        (990..=1000).contains(&ack.count),
        "{} ack latencies",
        ack.count
    );
    assert_eq!(e2e.count, ack.count, "every measured record consumed");
    assert!(ack.p50_us > 0.0 && ack.p50_us <= ack.p99_us && ack.p99_us <= ack.max_us);
    assert!(e2e.p50_us > 0.0);
}

// ---------------------------------------------------------------------------
// Peer servers (Redis, NATS, noida-db) that a test starts

/// Set to `1` (as `.ci/run` does, after installing them) to make a peer
/// server that is not installed fail its test instead of skipping it.
pub const REQUIRE_PEERS_ENV: &str = "SLUICE_REQUIRE_PEERS";

/// How long a peer server may take to start listening.
const PEER_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the peer `server` is installed (`found`). If not, the test fails
/// under `SLUICE_REQUIRE_PEERS=1`, and is otherwise skipped with a line on
/// the process's stderr, which the test harness does not capture.
pub fn peer_installed(server: &str, found: bool, install: &str) -> bool {
    if found {
        return true;
    }
    if std::env::var(REQUIRE_PEERS_ENV).as_deref() == Ok("1") {
        panic!("{server} is not installed ({install}) and {REQUIRE_PEERS_ENV}=1");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {server} is not installed ({install}); {REQUIRE_PEERS_ENV}=1 makes this a \
         failure"
    );
    false
}

/// Whether `program` runs with `args` and succeeds.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A server process, killed when the test ends however it ends.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Waits until `address` accepts connections; fails the test if the
    /// server exits or does not listen in time.
    pub fn wait_until_listening(&mut self, name: &str, address: &str) {
        let deadline = Instant::now() + PEER_START_TIMEOUT;
        while TcpStream::connect(address).is_err() {
            if let Ok(Some(status)) = self.0.try_wait() {
                panic!("{name} exited while starting: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} never listened on {address}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A port for a server that cannot choose one itself and report it
/// (redis-server: port 0 turns its TCP listener off). The kernel gives it
/// and takes it back; another process may take it before the server binds
/// it, so only such a server uses this.
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("a bound address").port()
}
