//! Who a speaker is on the wire: its node name, address and boot id.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A speaker's identity in the SWIM protocol.
///
/// Foca treats two identities with the same [`foca::Identity::addr`] — here the node name — as
/// the same member and keeps the newer one (`boot`, then `generation`). So a speaker that
/// restarts (new `boot`) replaces its old self cleanly, and one that was wrongly declared down
/// renews itself (`generation + 1`) and rejoins at once instead of staying out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    /// The Kubernetes node name.
    pub name: String,
    /// Where this speaker receives membership datagrams.
    pub addr: SocketAddr,
    /// When this process started (µs since the Unix epoch): larger means newer.
    pub boot: u64,
    /// Bumped each time this process rejoins after being declared down.
    pub generation: u32,
}

impl NodeId {
    /// The identity a member is announced to before we know its boot id: foca accepts an
    /// `Announce` addressed to any identity with the member's name.
    pub(crate) fn placeholder(name: &str, addr: SocketAddr) -> NodeId {
        NodeId {
            name: name.to_owned(),
            addr,
            boot: 0,
            generation: 0,
        }
    }
}

impl foca::Identity for NodeId {
    type Addr = String;

    fn renew(&self) -> Option<Self> {
        Some(NodeId {
            generation: self.generation.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> String {
        self.name.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.boot, self.generation) > (adversary.boot, adversary.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn id(boot: u64, generation: u32) -> NodeId {
        NodeId {
            name: "node1".into(),
            addr: "127.0.0.1:7946".parse().expect("addr"),
            boot,
            generation,
        }
    }

    #[test]
    fn newer_boot_wins_then_generation() {
        assert!(id(2, 0).win_addr_conflict(&id(1, 9)));
        assert!(!id(1, 9).win_addr_conflict(&id(2, 0)));
        assert!(id(1, 1).win_addr_conflict(&id(1, 0)));
        let renewed = id(1, 0).renew().expect("renewable");
        assert!(renewed.win_addr_conflict(&id(1, 0)));
        assert_eq!(renewed.addr(), "node1");
    }
}
