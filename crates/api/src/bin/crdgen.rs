//! Writes the CRD of every `metallb.io` kind to `deploy/crds/` (or the directory given as the
//! only argument), one file per CRD.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds"),
    };
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in ironlb_api::crd::all() {
        let path = dir.join(&file);
        std::fs::write(&path, ironlb_api::crd::to_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
