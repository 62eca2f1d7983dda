//! Property tests: codecs round-trip and never panic; the incremental owner index always equals
//! the from-scratch owner selection.

#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_allocator::LabelSelector;
use ironlb_config::L2Advertisement;
use ironlb_l2::ethernet::EthernetHeader;
use ironlb_l2::owner::{EXCLUDE_LABEL, NoOwner};
use ironlb_l2::{
    AdvertisementFlags, ArpFrame, ArpOperation, MacAddr, NdpFrame, NdpMessage, NodeInfo,
    OwnerIndex, ServiceInfo, Settings, select_owner,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn arp_frame() -> impl Strategy<Value = ArpFrame> {
    (
        mac(),
        mac(),
        any::<bool>(),
        mac(),
        any::<[u8; 4]>(),
        mac(),
        any::<[u8; 4]>(),
    )
        .prop_map(
            |(eth_dst, eth_src, req, sender_mac, sip, target_mac, tip)| ArpFrame {
                eth_dst,
                eth_src,
                operation: if req {
                    ArpOperation::Request
                } else {
                    ArpOperation::Reply
                },
                sender_mac,
                sender_ip: Ipv4Addr::from(sip),
                target_mac,
                target_ip: Ipv4Addr::from(tip),
            },
        )
}

fn unicast_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(|mut b| {
        if b[0] == 0xff {
            b[0] = 0xfd;
        }
        Ipv6Addr::from(b)
    })
}

/// Valid NS/NA frames (as RFC 4861 7.1 allows them).
fn ndp_frame() -> impl Strategy<Value = NdpFrame> {
    (
        mac(),
        mac(),
        unicast_v6(),
        unicast_v6(),
        unicast_v6(),
        proptest::option::of(mac()),
        any::<(bool, bool, bool, bool)>(),
    )
        .prop_map(|(eth_dst, eth_src, src, dst, target, opt, (ns, r, s, o))| {
            if ns {
                NdpFrame {
                    eth_dst,
                    eth_src,
                    ip_src: src,
                    ip_dst: dst,
                    message: NdpMessage::NeighborSolicitation {
                        target,
                        source_mac: opt,
                    },
                }
            } else {
                NdpFrame {
                    eth_dst,
                    eth_src,
                    ip_src: src,
                    ip_dst: dst,
                    message: NdpMessage::NeighborAdvertisement {
                        flags: AdvertisementFlags {
                            router: r,
                            solicited: s,
                            override_: o,
                        },
                        target,
                        target_mac: opt,
                    },
                }
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arp_encode_then_decode_is_identity(f in arp_frame()) {
        prop_assert_eq!(ArpFrame::decode(&f.to_bytes()), Ok(f));
    }

    #[test]
    fn ndp_encode_then_decode_is_identity(f in ndp_frame()) {
        prop_assert_eq!(NdpFrame::decode(&f.to_bytes()), Ok(f));
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = ArpFrame::decode(&bytes);
        let _ = NdpFrame::decode(&bytes);
    }

    /// Random bytes after a valid header prefix reach the deeper checks.
    #[test]
    fn decoding_mutated_frames_never_panics(
        f in ndp_frame(),
        a in arp_frame(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        for mut bytes in [f.to_bytes(), a.to_bytes()] {
            for (i, v) in &flips {
                let n = bytes.len();
                bytes[i % n] ^= v;
            }
            let cut = cut % (bytes.len() + 1);
            let _ = ArpFrame::decode(&bytes[..cut]);
            let _ = NdpFrame::decode(&bytes[..cut]);
            let _ = ArpFrame::decode(&bytes);
            let _ = NdpFrame::decode(&bytes);
        }
    }

    /// Every decoder (Ethernet, ARP, NDP) on every truncation of a random frame: no panic, and
    /// the fuzz targets' oracles hold (what decodes re-encodes consistently), so `cargo test`
    /// covers what `cargo fuzz` checks when it cannot run.
    #[test]
    fn every_decoder_on_every_truncation_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..160),
        f in ndp_frame(),
        a in arp_frame(),
        flip in (any::<usize>(), any::<u8>()),
    ) {
        let mut valid = [f.to_bytes(), a.to_bytes()];
        for v in &mut valid {
            let n = v.len();
            v[flip.0 % n] ^= flip.1;
        }
        for input in [bytes.as_slice(), valid[0].as_slice(), valid[1].as_slice()] {
            for cut in 0..=input.len() {
                let data = &input[..cut];
                if let Ok((_, payload)) = EthernetHeader::decode(data) {
                    prop_assert_eq!(payload.len() + 14, data.len());
                }
                if let Ok(frame) = ArpFrame::decode(data) {
                    let again = frame.to_bytes();
                    prop_assert_eq!(&again[..], &data[..again.len()]);
                    prop_assert_eq!(ArpFrame::decode(&again), Ok(frame));
                }
                if let Ok(frame) = NdpFrame::decode(data) {
                    prop_assert_eq!(NdpFrame::decode(&frame.to_bytes()), Ok(frame));
                }
            }
        }
    }

    /// Any single-bit flip in the checksummed part of a NDP frame is caught (by the checksum,
    /// or an earlier check).
    #[test]
    fn ndp_bit_flips_are_rejected(f in ndp_frame(), bit in 0usize..(8 * 64)) {
        let mut bytes = f.to_bytes();
        // Flip inside src/dst/ICMPv6 (bytes 22..), not in the Ethernet header.
        let bit = 22 * 8 + bit % ((bytes.len() - 22) * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(NdpFrame::decode(&bytes).is_err() || NdpFrame::decode(&bytes) != Ok(f));
    }
}

// ---- owner selection ----

const NODES: usize = 6;

fn node_name(i: usize) -> String {
    format!("node{i}")
}

fn selector(zone: Option<u8>) -> LabelSelector {
    let mut s = LabelSelector::default();
    if let Some(z) = zone {
        s.match_labels.insert("zone".into(), format!("z{z}"));
    }
    s
}

fn ads() -> impl Strategy<Value = Vec<L2Advertisement>> {
    proptest::collection::vec(
        (
            prop_oneof![Just("a"), Just("b")],
            proptest::option::of(0u8..3),
            proptest::option::of(0u8..2),
            proptest::collection::vec((1i32..100, 0u8..3), 0..3),
        ),
        0..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (pool, node_zone, svc_tier, prefs))| L2Advertisement {
                name: format!("ad{i}"),
                pools: vec![pool.to_string()],
                node_selectors: node_zone
                    .map(|z| vec![selector(Some(z))])
                    .unwrap_or_default(),
                interfaces: vec![],
                service_selectors: svc_tier
                    .map(|t| {
                        let mut s = LabelSelector::default();
                        s.match_labels.insert("tier".into(), format!("t{t}"));
                        vec![s]
                    })
                    .unwrap_or_default(),
                preferred_nodes: prefs
                    .into_iter()
                    .map(|(w, z)| (w, selector(Some(z))))
                    .collect(),
            })
            .collect()
    })
}

fn node_info() -> impl Strategy<Value = NodeInfo> {
    (
        0u8..3,
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(zone, _, exclude, unavailable)| {
            let mut labels = BTreeMap::new();
            labels.insert("zone".to_string(), format!("z{zone}"));
            if exclude {
                labels.insert(EXCLUDE_LABEL.to_string(), String::new());
            }
            NodeInfo {
                labels,
                network_unavailable: unavailable,
            }
        })
}

fn service_info() -> impl Strategy<Value = ServiceInfo> {
    (
        0u8..8,
        prop_oneof![Just("a"), Just("b")],
        0u8..3,
        any::<bool>(),
        prop::bool::weighted(0.9),
        proptest::collection::btree_set(0..NODES, 0..3),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(ip, pool, tier, local, serving, nodes, shares)| {
            let mut labels = BTreeMap::new();
            labels.insert("tier".to_string(), format!("t{tier}"));
            ServiceInfo {
                // A few addresses only, so Services share them.
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 150 + ip)),
                pool: pool.to_string(),
                labels,
                local_traffic_policy: local,
                has_serving_endpoint: serving || !nodes.is_empty(),
                serving_nodes: nodes.into_iter().map(node_name).collect::<BTreeSet<_>>(),
                shares_address: shares,
            }
        })
}

#[derive(Debug, Clone)]
enum Event {
    NodeUp(usize, NodeInfo),
    NodeDown(usize),
    Service(u8, ServiceInfo),
    RemoveService(u8),
    Config(Vec<L2Advertisement>, bool),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..NODES, node_info()).prop_map(|(i, n)| Event::NodeUp(i, n)),
        3 => (0..NODES).prop_map(Event::NodeDown),
        4 => (0u8..10, service_info()).prop_map(|(k, s)| Event::Service(k, s)),
        1 => (0u8..10).prop_map(Event::RemoveService),
        1 => (ads(), any::<bool>()).prop_map(|(a, i)| Event::Config(a, i)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn incremental_index_equals_from_scratch(
        initial_ads in ads(),
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let mut index = OwnerIndex::new(initial_ads.clone(), Settings::default());
        let mut ads = initial_ads;
        let mut settings = Settings::default();
        let mut nodes: BTreeMap<String, NodeInfo> = BTreeMap::new();
        let mut services: BTreeMap<String, ServiceInfo> = BTreeMap::new();
        for ev in events {
            let before: BTreeMap<String, _> =
                index.decisions().map(|(k, d)| (k.to_string(), d.clone())).collect();
            let changes = match ev {
                Event::NodeUp(i, info) => {
                    nodes.insert(node_name(i), info.clone());
                    index.upsert_node(&node_name(i), info)
                }
                Event::NodeDown(i) => {
                    nodes.remove(&node_name(i));
                    index.remove_node(&node_name(i))
                }
                Event::Service(k, s) => {
                    services.insert(format!("svc{k}"), s.clone());
                    index.upsert_service(&format!("svc{k}"), s).into_iter().collect()
                }
                Event::RemoveService(k) => {
                    services.remove(&format!("svc{k}"));
                    index.remove_service(&format!("svc{k}")).into_iter().collect()
                }
                Event::Config(a, ignore) => {
                    ads = a.clone();
                    settings = Settings { ignore_exclude_lb: ignore };
                    index.set_config(a, settings)
                }
            };
            for (key, svc) in &services {
                let expected = select_owner(svc, &ads, &nodes, settings);
                prop_assert_eq!(index.owner(key), Some(&expected), "service {}", key);
                if let Ok(owner) = &expected {
                    prop_assert!(index.owned_by(owner).any(|k| k == key));
                }
            }
            prop_assert_eq!(index.decisions().count(), services.len());
            // The reported changes are exactly the decisions that changed.
            let after: BTreeMap<String, _> =
                index.decisions().map(|(k, d)| (k.to_string(), d.clone())).collect();
            for c in &changes {
                prop_assert_eq!(before.get(&c.service), c.before.as_ref());
                prop_assert_eq!(after.get(&c.service), c.after.as_ref());
            }
            let changed: BTreeSet<&String> = before
                .keys()
                .chain(after.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .collect();
            let reported: BTreeSet<&String> = changes.iter().map(|c| &c.service).collect();
            prop_assert_eq!(changed, reported);
        }
    }

    /// Services sharing an address with the same inputs land on the same node, and the owner
    /// is always a live, eligible node.
    #[test]
    fn owner_is_eligible_and_shared_addresses_agree(
        ads in ads(),
        infos in proptest::collection::vec(node_info(), 1..NODES),
        svc in service_info(),
    ) {
        let nodes: BTreeMap<String, NodeInfo> =
            infos.into_iter().enumerate().map(|(i, n)| (node_name(i), n)).collect();
        let a = select_owner(&svc, &ads, &nodes, Settings::default());
        let mut twin = svc.clone();
        twin.labels = svc.labels.clone();
        prop_assert_eq!(&a, &select_owner(&twin, &ads, &nodes, Settings::default()));
        if let Ok(owner) = &a {
            let n = &nodes[owner];
            prop_assert!(!n.network_unavailable);
            prop_assert!(!n.labels.contains_key(EXCLUDE_LABEL));
            if svc.local_traffic_policy {
                prop_assert!(svc.serving_nodes.contains(owner));
            }
        } else {
            prop_assert!(matches!(
                a,
                Err(NoOwner::NoServingEndpoint
                    | NoOwner::NoAdvertisement
                    | NoOwner::NoEligibleNode
                    | NoOwner::SharedWithServiceSelectors)
            ));
            if a == Err(NoOwner::SharedWithServiceSelectors) {
                prop_assert!(svc.shares_address);
            }
        }
    }
}
