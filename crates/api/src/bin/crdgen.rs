//! Writes the CRD of every `metallb.io` kind to `deploy/crds/`, one file per CRD, and the
//! one-file install manifest `deploy/ironlb-native.yaml` (from the parts in `deploy/` and the
//! same CRDs). With a directory as the only argument, writes only the CRDs, there.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let (dir, whole_deploy) = match std::env::args_os().nth(1) {
        Some(dir) => (PathBuf::from(dir), false),
        None => (deploy.join("crds"), true),
    };
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in ironlb_api::crd::all() {
        let path = dir.join(&file);
        std::fs::write(&path, ironlb_api::crd::to_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    if whole_deploy {
        let path = deploy.join(ironlb_api::manifest::NATIVE_FILE);
        std::fs::write(&path, ironlb_api::manifest::native(&deploy)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
