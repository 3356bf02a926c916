//! `ferry`: exec'd by the container runtime once per pod and verb.

fn main() {
    ferry_plugin::run::main_with(|stdin| ferry_plugin::run::run(|k| std::env::var(k).ok(), stdin))
}
