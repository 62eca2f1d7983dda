//! Container images without a registry: each image is one static binary and nothing else,
//! packed into a docker-archive by `buildah` and imported into every real node's containerd.
//!
//! ```text
//!   crates/lab/programs/<program>.rs --rustc, crt-static--> <cache>/images/programs/<program>-<hash>
//!   static binary --buildah (vfs, throwaway storage)--> <cache>/images/<image>-<hash>.tar
//!   <image>.tar --ctr -n k8s.io images import (one node's socket)--> that node's containerd
//! ```
//!
//! Everything is cached by the hash of its input (the program's source and the compiler's
//! version, or the binary's bytes), so a warm lab builds nothing. Pods find the images because
//! a tagged image is pulled only when missing (`IfNotPresent`): nothing ever reaches a registry.

use crate::proc::run;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The Pod sandbox image every real node's containerd uses (`sandbox_image`).
pub const PAUSE_IMAGE: &str = "lab.local/ironlb-lab/pause:1";
/// The walkthrough's application image: here a small HTTP server answering with its Pod's name.
pub const APPS_IMAGE: &str = "registry.cn-hangzhou.aliyuncs.com/nginx-k8s/apps:v1";
/// The repository of ironlb's own image (`ironlb/ironlb:<tag>`).
pub const IRONLB_REPOSITORY: &str = "ironlb/ironlb";

/// Bumped whenever the way images are put together changes, so cached archives are rebuilt.
const RECIPE: &str = "ironlb-lab images v2";

/// An image packed as a docker-archive file, ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageArchive {
    /// The image reference it carries (`registry/repository:tag`).
    pub name: String,
    /// The docker-archive file.
    pub path: PathBuf,
}

/// `name` as containerd and the kubelet read it: a reference without a registry is on
/// docker.io, and a one-part repository under `library/` (`ironlb/ironlb:1` is
/// `docker.io/ironlb/ironlb:1`). Building under the full name keeps buildah from adding a
/// `localhost/` alias of its own.
pub fn qualified(name: &str) -> String {
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let has_registry = first.contains('.') || first.contains(':') || first == "localhost";
    match (has_registry, first.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => format!("docker.io/library/{rest}"),
        (false, false) => format!("docker.io/{name}"),
    }
}

/// Where built programs and image archives are kept.
fn images_dir() -> PathBuf {
    crate::cache_root().join("images")
}

/// Holds an exclusive lock on the image cache, so parallel tests build each image once.
struct CacheLock {
    // Held for its lock, released when dropped.
    _file: std::fs::File,
}

impl CacheLock {
    fn take() -> Result<CacheLock> {
        let dir = images_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        file.lock().context("locking the image cache")?;
        Ok(CacheLock { _file: file })
    }
}

/// How many builds of one program or image the cache keeps: a new ironlb binary makes a new
/// archive each time, and a few older ones stay for labs of other checkouts still using them.
const KEEP: usize = 3;

/// Removes all but the newest [`KEEP`] files in `dir` named `<stem>-<16 hex digits>[.tar]`.
fn prune(dir: &Path, stem: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut builds: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix(stem)
                .and_then(|rest| rest.strip_prefix('-'))
                .map(|rest| rest.trim_end_matches(".tar"))
                .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    builds.sort_by_key(|b| std::cmp::Reverse(b.0));
    for (_, old) in builds.into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(old);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 16 hex digits of the SHA-256 of `parts`, each prefixed by its length so that
/// different splits of the same bytes never collide.
fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex(&h.finalize())[..16].to_string()
}

/// Compiles the lab's program `crates/lab/programs/<name>.rs` (the images' `pause` and `apps`,
/// and the API server's `egress` proxy) into a static binary and returns its path. `rustc` alone, not cargo: the programs use only std, and building them inside the
/// workspace with `+crt-static` would rebuild every dependency of the lab a second time.
/// (x86_64-unknown-linux-gnu with a static glibc: the musl target cannot be installed here.)
pub fn lab_program(name: &str) -> Result<PathBuf> {
    let source = crate::components::checkout_path(&format!("crates/lab/programs/{name}.rs"));
    let code = std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = run(&rustc, &["-vV"]).context("the lab's images are compiled with rustc")?;
    let out_dir = images_dir().join("programs");
    let out = out_dir.join(format!(
        "{name}-{}",
        short_hash(&[&code, version.as_bytes(), RECIPE.as_bytes()])
    ));
    if out.is_file() {
        return Ok(out);
    }
    let _lock = CacheLock::take()?;
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&out_dir)?;
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let source_arg = source.display().to_string();
    let tmp_arg = tmp.display().to_string();
    run(
        &rustc,
        &[
            "--edition",
            "2024",
            "--crate-name",
            name,
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
            &source_arg,
            "-o",
            &tmp_arg,
        ],
    )
    .with_context(|| format!("compiling {}", source.display()))?;
    std::fs::rename(&tmp, &out)?;
    prune(&out_dir, name);
    Ok(out)
}

/// Fails unless `binary` is a statically linked ELF executable: the image holds nothing else,
/// so a binary that needs a dynamic loader would not even start.
pub fn ensure_static(binary: &Path) -> Result<()> {
    let elf = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    if interpreter(&elf).context("not an ELF64 executable")? {
        bail!(
            "{} is dynamically linked (it has an ELF interpreter); an image of one binary \
             needs a static one",
            binary.display()
        );
    }
    Ok(())
}

/// Whether a little-endian ELF64 file has a PT_INTERP program header; `None` if it is no such file.
fn interpreter(elf: &[u8]) -> Option<bool> {
    if elf.get(..4)? != b"\x7fELF" || *elf.get(4)? != 2 || *elf.get(5)? != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let (phentsize, phnum) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    const PT_INTERP: u32 = 3;
    let mut found = false;
    for i in 0..phnum {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?);
        found |= kind == PT_INTERP;
    }
    Some(found)
}

/// Packs `binary` as `/<file_name>` into image `name` whose entrypoint is that file and nothing
/// else, as a docker-archive in the cache (rebuilt only when the binary or the names change).
pub fn image_from_binary(name: &str, binary: &Path, file_name: &str) -> Result<ImageArchive> {
    if file_name.is_empty() || file_name.contains('/') {
        bail!("{file_name:?} is not a file name");
    }
    ensure_static(binary)?;
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = images_dir();
    let path = dir.join(format!(
        "{safe}-{}.tar",
        short_hash(&[
            &bytes,
            name.as_bytes(),
            file_name.as_bytes(),
            RECIPE.as_bytes()
        ])
    ));
    let archive = ImageArchive {
        name: name.to_string(),
        path,
    };
    if archive.path.is_file() {
        return Ok(archive);
    }
    let _lock = CacheLock::take()?;
    if archive.path.is_file() {
        return Ok(archive);
    }
    // A throwaway buildah store per build: vfs keeps full copies, and a store shared between
    // builds would only grow.
    let work = dir.join(format!("buildah-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let result = buildah_pack(&work, name, binary, file_name, &archive.path);
    let _ = std::fs::remove_dir_all(&work);
    result.with_context(|| format!("building image {name} with buildah"))?;
    prune(&dir, &safe);
    Ok(archive)
}

fn buildah_pack(work: &Path, name: &str, binary: &Path, file_name: &str, out: &Path) -> Result<()> {
    let root = work.join("root").display().to_string();
    let runroot = work.join("runroot").display().to_string();
    let buildah = |args: &[&str]| -> Result<String> {
        let mut all = vec![
            "--storage-driver",
            "vfs",
            "--root",
            &root,
            "--runroot",
            &runroot,
        ];
        all.extend_from_slice(args);
        run("buildah", &all).map(|s| s.trim().to_string())
    };
    let container = buildah(&["from", "--quiet", "scratch"])?;
    let target = format!("/{file_name}");
    buildah(&[
        "copy",
        "--quiet",
        &container,
        &binary.display().to_string(),
        &target,
    ])?;
    let entrypoint = serde_json::to_string(&[&target])?;
    buildah(&[
        "config",
        "--entrypoint",
        &entrypoint,
        "--cmd",
        "",
        "--os",
        "linux",
        "--arch",
        "amd64",
        &container,
    ])?;
    let name = qualified(name);
    buildah(&["commit", "--quiet", "--format", "docker", &container, &name])?;
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    buildah(&[
        "push",
        "--quiet",
        &name,
        &format!("docker-archive:{}:{name}", tmp.display()),
    ])?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// The Pod sandbox image ([`PAUSE_IMAGE`]).
pub fn pause_image() -> Result<ImageArchive> {
    image_from_binary(PAUSE_IMAGE, &lab_program("pause")?, "pause")
}

/// The walkthrough's application image ([`APPS_IMAGE`]).
pub fn apps_image() -> Result<ImageArchive> {
    image_from_binary(APPS_IMAGE, &lab_program("apps")?, "apps")
}

/// ironlb's image `ironlb/ironlb:<tag>` from a static `ironlb` binary: the binary as `/ironlb`,
/// the entrypoint, and nothing else.
pub fn ironlb_image(binary: &Path, tag: &str) -> Result<ImageArchive> {
    image_from_binary(&format!("{IRONLB_REPOSITORY}:{tag}"), binary, "ironlb")
}

/// Imports `image` into the containerd listening on `socket`, in the namespace the kubelet
/// uses (`k8s.io`), unpacked for its default snapshotter. Importing the same archive again
/// changes nothing.
pub fn import(image: &ImageArchive, socket: &Path) -> Result<()> {
    run(
        "ctr",
        &[
            "--address",
            &socket.display().to_string(),
            "--namespace",
            "k8s.io",
            "images",
            "import",
            &image.path.display().to_string(),
        ],
    )
    .with_context(|| format!("importing {} into {}", image.name, socket.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_qualified_as_containerd_reads_them() {
        assert_eq!(qualified("ironlb/ironlb:1"), "docker.io/ironlb/ironlb:1");
        assert_eq!(qualified("busybox:1"), "docker.io/library/busybox:1");
        assert_eq!(qualified(APPS_IMAGE), APPS_IMAGE);
        assert_eq!(qualified(PAUSE_IMAGE), PAUSE_IMAGE);
        assert_eq!(qualified("localhost/x:1"), "localhost/x:1");
        assert_eq!(qualified("reg:5000/x:1"), "reg:5000/x:1");
    }

    #[test]
    fn hashes_tell_splits_apart() {
        assert_ne!(short_hash(&[b"ab", b"c"]), short_hash(&[b"a", b"bc"]));
        assert_eq!(short_hash(&[b"x"]).len(), 16);
    }

    #[test]
    fn only_elf64_files_are_judged() {
        assert_eq!(interpreter(b"#!/bin/sh\n"), None);
        assert_eq!(interpreter(b""), None);
        // A header that claims program headers past the end of the file.
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20] = 200;
        elf[0x36] = 56;
        elf[0x38] = 1;
        assert_eq!(interpreter(&elf), None);
    }

    #[test]
    fn the_test_binary_itself_is_dynamically_linked() {
        // Test executables link glibc dynamically, so they carry an interpreter.
        let exe = std::env::current_exe().expect("current exe");
        let elf = std::fs::read(exe).expect("read");
        assert_eq!(interpreter(&elf), Some(true));
    }
}
