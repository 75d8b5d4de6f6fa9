//! Writes `include/harmonics_dataset.h` from `src/ffi` with cbindgen (only when its
//! content changes, so an unchanged header does not retrigger builds) with the version
//! macros from Cargo.toml, and gives the shared library a versioned SONAME.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    soname();

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

/// The SONAME `libharmonics_dataset.so.<major>`: a program linked against the library
/// records that name and loads `libharmonics_dataset.so.<major>` at run time (the
/// installed tree has `.so -> .so.<major> -> .so.<version>`). Cargo writes the library
/// as `libharmonics_dataset.so` only, so the link `.so.<major> -> .so` is made beside it
/// (in the profile directory and in `deps/`, where `cargo test` builds it), where
/// programs linked against the build tree find it.
fn soname() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    let soname = format!("libharmonics_dataset.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    for dir in [profile_dir.to_path_buf(), profile_dir.join("deps")] {
        link_soname(&dir, &soname);
    }
}

/// `dir/<soname> -> libharmonics_dataset.so`, unless a file of that name is there already.
fn link_soname(dir: &Path, soname: &str) {
    let link = dir.join(soname);
    if std::fs::symlink_metadata(&link).is_ok() || !dir.is_dir() {
        return;
    }
    match std::os::unix::fs::symlink("libharmonics_dataset.so", &link) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            println!("cargo:warning=cannot link {}: {e}", link.display())
        }
        _ => {}
    }
}
