# Sourced by the scripts here, with $root (the repository) and $out (their
# results directory) set: builds Sluice and sluice-bench for release, sets
# $sluice and $bench to the binaries, and empties $out.
cargo build --release --manifest-path "$root/Cargo.toml" -p sluice -p sluice-bench >&2 || exit 1
target=${CARGO_TARGET_DIR:-$root/target}
bench=$target/release/sluice-bench
sluice=$target/release/sluice
rm -rf "$out"
mkdir -p "$out"
