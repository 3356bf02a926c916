//! `ferry-ipam`: ferry's allocator as a standalone CNI IPAM plugin, a
//! drop-in for `host-local` (same config, same files on disk).

fn main() {
    ferry_plugin::run::main_with(|stdin| {
        ferry_plugin::ipam_plugin::run(|k| std::env::var(k).ok(), stdin)
    })
}
