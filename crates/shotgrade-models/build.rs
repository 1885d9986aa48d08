//! Compiles the default weights into the library when `models/` holds all three files, so a
//! fresh checkout scores images without a download. Without them the library still builds and
//! `Models::embedded()` returns `None`.
use std::path::PathBuf;

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let models = manifest.join("../../models");
    println!("cargo:rerun-if-changed={}", models.display());
    let names = ["background", "position", "experience"];
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| models.join(format!("{n}.safetensors")))
        .collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    let code = if files.iter().all(|f| f.is_file()) {
        let bytes: Vec<String> = files
            .iter()
            .map(|f| {
                format!(
                    "include_bytes!({:?}) as &[u8]",
                    f.canonicalize()
                        .unwrap_or_else(|_| f.clone())
                        .display()
                        .to_string()
                )
            })
            .collect();
        format!(
            "/// The default weights: background, position, experience.\npub static EMBEDDED: Option<[&[u8]; 3]> = Some([{}]);\n",
            bytes.join(", ")
        )
    } else {
        "/// No default weights were present at build time.\npub static EMBEDDED: Option<[&[u8]; 3]> = None;\n".to_string()
    };
    std::fs::write(&out, code).expect("write embedded.rs");
}
