# syntax=docker/dockerfile:1
#
# ironlb's image: one static `ironlb` binary at /ironlb and nothing else. Both components run
# from it (`ironlb controller`, `ironlb speaker`; see deploy/). A user with a registry builds and
# pushes it:
#
#   docker build -t <registry>/ironlb/ironlb:<tag> .
#   docker push <registry>/ironlb/ironlb:<tag>
#
# and sets that image in deploy/ironlb-native.yaml (or the Helm chart's values).
#
# Not built by this project's tests: the machines they run on have neither docker nor a
# registry. The lab builds the same image offline (crates/lab/src/images.rs: the same static
# binary as /ironlb, its entrypoint, nothing else) and imports it into each node's containerd;
# keep the two in step.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# A static glibc binary (crt-static): nothing to load at run time, so it runs FROM scratch.
# It needs no host-name lookups (the API server is reached at the address in
# KUBERNETES_SERVICE_HOST, peers and listeners are IP addresses), which a static glibc could
# only do with NSS modules that are not in the image.
# Stripped: the release profile keeps line tables for the benchmarks, and the static glibc and
# std bring their own DWARF; unstripped the binary is ~89 MB, stripped ~19 MB (x86_64, Rust
# 1.95, fat LTO).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS='-C target-feature=+crt-static' \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked -p ironlb --target x86_64-unknown-linux-gnu \
    && cp target/x86_64-unknown-linux-gnu/release/ironlb /ironlb

FROM scratch
COPY --from=builder /ironlb /ironlb
# Non-root for the controller (its Deployment also says runAsNonRoot / runAsUser 65534). The
# speaker's DaemonSet runs it as root with only NET_RAW, as MetalLB's speaker runs.
USER 65534:65534
ENTRYPOINT ["/ironlb"]
