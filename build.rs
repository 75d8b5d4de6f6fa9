//! Writes `include/harmonics_dataset.h` from `src/ffi` with cbindgen (only when its
//! content changes, so an unchanged header does not retrigger builds), and gives the
//! shared library a SONAME.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libharmonics_dataset.so");

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
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
