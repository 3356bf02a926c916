//! How long a full compile takes at the scale.

#[path = "big/mod.rs"]
mod big;

/// Compile time at the scale (5 000 pods, 1 000 policies); run
/// with `cargo test -p ferry-netpol --release --test scale -- --ignored --nocapture`.
#[test]
#[ignore]
fn scale() {
    use ferry_netpol::{compile, Options};
    let c = big::cluster(5000, 1000, 50, false);
    let t = std::time::Instant::now();
    let rs = compile(&c, &Options::new("node0"));
    let elapsed = t.elapsed();
    let elements: usize = rs.sets.values().map(|s| s.elements.len()).sum();
    eprintln!(
        "compile: {elapsed:?}, {} chains, {} sets, {elements} elements",
        rs.chains.len(),
        rs.sets.len()
    );
}
