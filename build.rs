//! Writes `include/harmonics_dataset.h` from `src/ffi` with cbindgen (only when its
//! content changes, so an unchanged header does not retrigger builds) with the version
//! macros from Cargo.toml, and gives the shared library a SONAME.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libharmonics_dataset.so");

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    // The library version macros, from Cargo.toml (the one place it is written).
    let v = |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("set by cargo");
    config.after_includes = Some(format!(
        "{}\n\n/* The version of the library this header belongs to (Cargo.toml); \
         harmonics_version() is the\n   version of the library actually loaded. */\n\
         #define HARMONICS_DATASET_VERSION_MAJOR {}\n\
         #define HARMONICS_DATASET_VERSION_MINOR {}\n\
         #define HARMONICS_DATASET_VERSION_PATCH {}\n\
         #define HARMONICS_DATASET_VERSION \"{}\"",
        config.after_includes.as_deref().unwrap_or(""),
        v("MAJOR"),
        v("MINOR"),
        v("PATCH"),
        std::env::var("CARGO_PKG_VERSION").expect("set by cargo"),
    ));
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(crate_dir.join("include/harmonics_dataset.h"));
        }
        // A syntax error in src/ is reported by rustc with a better message.
        Err(e) => println!("cargo:warning=cbindgen could not generate the header: {e}"),
    }
}
