//! The `sluice` command line. The broker it will start is built in `sluice-engine`.

fn main() {
    eprintln!(
        "sluice {}: the broker is not built yet; see the README",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
