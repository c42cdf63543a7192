//! Passes the target triple to the tests, which compile C plugins with the `cc` crate (it needs the
//! triple, which cargo gives only to build scripts).

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=TKBENCH_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
