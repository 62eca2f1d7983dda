//! Allocating the next free address with 1,000,000 addresses already in use, in an IPv4 /12 and
//! an IPv6 /64: ironlb's allocator beside a naive first-fit scan from the pool start (MetalLB's
//! method), in the same run.
//!
//! ```text
//!   case            what is timed (per operation)                      fill
//!   allocator       Allocator::assign of a new Service (full path)     1M Services, contiguous
//!   block           AddressBlock::first_free + mark_used               1M addresses, contiguous
//!   scan            walk from the pool start over a HashSet<u128>      1M addresses, contiguous
//!   fragmented      block and scan with 1M used at every other address (1M runs: the
//!                   structure's worst case; the scan finds the hole at once)
//! ```
//!
//! Each timed operation is undone outside the timer, so the fill stays at 1M.
//! Memory is measured, not computed: a counting global allocator (`stats_alloc`) reports the
//! net heap bytes the fill added, divided by the addresses in use.
//!
//! The baseline is kinder than MetalLB: integer keys in one hash set, where MetalLB keeps
//! several maps keyed by the address as a string.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark binary

use std::alloc::System;
use std::collections::HashSet;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ironlb_allocator::{AddressBlock, AddressRange, Allocator, IpFamily, Pool, ServiceRequest};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const IN_USE: u64 = 1_000_000;
/// Operations timed back to back before they are undone (untimed).
const BATCH: u64 = 1000;

/// Net heap bytes added while running `f`.
fn heap_delta<T>(f: impl FnOnce() -> T) -> (T, i64) {
    let region = Region::new(GLOBAL);
    let out = f();
    let s = region.change();
    let net = s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64;
    (out, net)
}

struct Case {
    name: &'static str,
    cidr: &'static str,
    family: IpFamily,
}

fn request(family: IpFamily, name: String) -> ServiceRequest {
    let mut r = ServiceRequest::new("default", name);
    r.ip_families = vec![family];
    r
}

fn pool(cidr: &str) -> Pool {
    Pool {
        name: "bench".into(),
        ranges: vec![AddressRange::Cidr(cidr.parse().unwrap())],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
    }
}

fn range_of(cidr: &str) -> (IpAddr, IpAddr) {
    let net: ipnet::IpNet = cidr.parse().unwrap();
    (net.network(), net.broadcast())
}

fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn ip_of(family: IpFamily, n: u128) -> IpAddr {
    match family {
        IpFamily::V4 => IpAddr::V4(u32::try_from(n).unwrap().into()),
        IpFamily::V6 => IpAddr::V6(n.into()),
    }
}

/// MetalLB's method: walk the pool from its first address, skipping used ones.
struct FirstFitScan {
    first: u128,
    last: u128,
    used: HashSet<u128>,
}

impl FirstFitScan {
    fn allocate(&mut self) -> Option<u128> {
        let mut n = self.first;
        loop {
            if !self.used.contains(&n) {
                self.used.insert(n);
                return Some(n);
            }
            if n == self.last {
                return None;
            }
            n += 1;
        }
    }
}

/// Times `op` `iters` times in batches, undoing each batch with `undo` outside the timer.
fn batched<S>(
    state: &mut S,
    iters: u64,
    mut op: impl FnMut(&mut S, u64) -> IpAddr,
    mut undo: impl FnMut(&mut S, &[IpAddr]),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    let mut got = Vec::with_capacity(BATCH as usize);
    while done < iters {
        let n = BATCH.min(iters - done);
        got.clear();
        let t = Instant::now();
        for i in 0..n {
            got.push(black_box(op(state, i)));
        }
        total += t.elapsed();
        undo(state, &got);
        done += n;
    }
    total
}

struct Figures {
    name: &'static str,
    allocator_ns: f64,
    block_ns: f64,
    scan_ns: f64,
    allocator_bytes: f64,
    block_bytes: f64,
    scan_bytes: f64,
    fill_ns: f64,
}

fn per_op(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// `iters` assignments of the probe Services to the filled allocator, released batch by batch.
fn time_allocator(alloc: &mut Allocator, probes: &[ServiceRequest], iters: u64) -> Duration {
    batched(
        alloc,
        iters,
        |a, i| a.assign(&probes[i as usize]).unwrap().ips[0],
        |a, _| {
            for p in probes {
                a.release(&p.key);
            }
        },
    )
}

/// `iters` first-free lookups (each address then marked used) in the filled block.
fn time_block(block: &mut AddressBlock, iters: u64) -> Duration {
    batched(
        block,
        iters,
        |bl, _| {
            let ip = bl.first_free().unwrap();
            bl.mark_used(ip);
            ip
        },
        |bl, got| {
            for ip in got {
                bl.mark_free(*ip);
            }
        },
    )
}

/// `iters` allocations of the first-fit baseline.
fn time_scan(scan: &mut FirstFitScan, family: IpFamily, iters: u64) -> Duration {
    batched(
        scan,
        iters,
        |s, _| ip_of(family, s.allocate().unwrap()),
        |s, got| {
            for ip in got {
                s.used.remove(&num(*ip));
            }
        },
    )
}

fn run_case(c: &mut Criterion, case: &Case) -> Figures {
    let (first, last) = range_of(case.cidr);
    let family = case.family;
    println!(
        "[{}] filling the allocator with {IN_USE} Services ...",
        case.name
    );

    // The full allocator, filled through its public API.
    let t = Instant::now();
    let (mut alloc, alloc_bytes) = heap_delta(|| {
        let mut a = Allocator::new();
        a.set_pools(vec![pool(case.cidr)]).unwrap();
        for i in 0..IN_USE {
            a.assign(&request(family, format!("svc-{i:07}"))).unwrap();
        }
        a
    });
    let fill_ns = per_op(t.elapsed(), IN_USE);
    let probes: Vec<ServiceRequest> = (0..BATCH)
        .map(|i| request(family, format!("probe-{i:04}")))
        .collect();

    // The block alone.
    let (mut block, block_bytes) = heap_delta(|| {
        let mut b = AddressBlock::new(first, last, false).unwrap();
        for n in num(first)..num(first) + u128::from(IN_USE) {
            b.mark_used(ip_of(family, n));
        }
        b
    });

    // The baseline.
    println!("[{}] filling the first-fit baseline ...", case.name);
    let (mut scan, scan_bytes) = heap_delta(|| {
        let mut used = HashSet::new();
        for n in num(first)..num(first) + u128::from(IN_USE) {
            used.insert(n);
        }
        FirstFitScan {
            first: num(first),
            last: num(last),
            used,
        }
    });

    let mut g = c.benchmark_group(format!("next_free_1M_in_use/{}", case.name));
    g.bench_function("ironlb_allocator_assign", |b| {
        b.iter_custom(|iters| time_allocator(&mut alloc, &probes, iters))
    });
    g.bench_function("ironlb_block_first_free", |b| {
        b.iter_custom(|iters| time_block(&mut block, iters))
    });
    g.bench_function("first_fit_scan_baseline", |b| {
        b.iter_custom(|iters| time_scan(&mut scan, family, iters))
    });
    g.finish();

    // Our own short measurement, same state, for the ratio printed below.
    Figures {
        name: case.name,
        allocator_ns: per_op(time_allocator(&mut alloc, &probes, 20_000), 20_000),
        block_ns: per_op(time_block(&mut block, 20_000), 20_000),
        scan_ns: per_op(time_scan(&mut scan, family, 30), 30),
        allocator_bytes: alloc_bytes as f64 / IN_USE as f64,
        block_bytes: block_bytes as f64 / IN_USE as f64,
        scan_bytes: scan_bytes as f64 / IN_USE as f64,
        fill_ns,
    }
}

/// 1M used at every other address of a /64: 1M runs, the run structure's worst case.
fn fragmented(c: &mut Criterion) -> (f64, f64, f64, f64) {
    let (first, last) = range_of("2001:db8::/64");
    let base = num(first);
    println!("[fragmented] filling every other address ...");
    let (mut block, bytes) = heap_delta(|| {
        let mut b = AddressBlock::new(first, last, false).unwrap();
        for k in 0..u128::from(IN_USE) {
            b.mark_used(ip_of(IpFamily::V6, base + 2 * k));
        }
        b
    });
    assert_eq!(block.runs() as u64, IN_USE);
    let mut scan = FirstFitScan {
        first: base,
        last: num(last),
        used: (0..u128::from(IN_USE)).map(|k| base + 2 * k).collect(),
    };
    let op = |bl: &mut AddressBlock, _| {
        let ip = bl.first_free().unwrap();
        bl.mark_used(ip);
        ip
    };
    // One at a time: each allocation fills the lowest hole, so undo after every one.
    let mut g = c.benchmark_group("next_free_1M_in_use/ipv6_64_fragmented");
    g.bench_function("ironlb_block_first_free", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let ip = black_box(op(&mut block, 0));
                total += t.elapsed();
                block.mark_free(ip);
            }
            total
        })
    });
    g.finish();
    let n = 20_000u64;
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        let ip = black_box(op(&mut block, 0));
        total += t.elapsed();
        block.mark_free(ip);
    }
    let block_ns = per_op(total, n);
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        let got = black_box(scan.allocate().unwrap());
        total += t.elapsed();
        scan.used.remove(&got);
    }
    let scan_ns = per_op(total, n);
    (
        block_ns,
        scan_ns,
        bytes as f64 / IN_USE as f64,
        block.runs() as f64,
    )
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: skip the 1M fills (minutes in a debug
    // build); the figures come from `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("allocate: run with `cargo bench` to measure; nothing to test here");
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let cases = [
        Case {
            name: "ipv4_12",
            cidr: "10.0.0.0/12",
            family: IpFamily::V4,
        },
        Case {
            name: "ipv6_64",
            cidr: "2001:db8::/64",
            family: IpFamily::V6,
        },
    ];
    let figures: Vec<Figures> = cases.iter().map(|case| run_case(&mut c, case)).collect();
    let (frag_ns, frag_scan_ns, frag_bytes, frag_runs) = fragmented(&mut c);
    c.final_summary();

    println!();
    println!("next free address with {IN_USE} in use (own timing, 20,000 ops; scan 30 ops)");
    println!(
        "| pool | ironlb assign (full path) | ironlb block only | first-fit scan | scan / assign | scan / block | heap B/address: allocator, block, scan | fill ns/assign |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for f in &figures {
        println!(
            "| {} | {:.0} ns | {:.0} ns | {:.2} ms | {:.0}x | {:.0}x | {:.0}, {:.6}, {:.1} | {:.0} |",
            f.name,
            f.allocator_ns,
            f.block_ns,
            f.scan_ns / 1e6,
            f.scan_ns / f.allocator_ns,
            f.scan_ns / f.block_ns,
            f.allocator_bytes,
            f.block_bytes,
            f.scan_bytes,
            f.fill_ns,
        );
    }
    println!(
        "| ipv6_64 fragmented ({frag_runs} runs) | - | {frag_ns:.0} ns | {:.0} ns | - | {:.2}x | -, {frag_bytes:.1}, - | - |",
        frag_scan_ns,
        frag_scan_ns / frag_ns,
    );
}
