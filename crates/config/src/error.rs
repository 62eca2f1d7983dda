//! The one error type: which object, which field, what is wrong.

use std::fmt;

/// The kind of a configuration object, spelled as MetalLB spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// `IPAddressPool`
    IpAddressPool,
    /// `L2Advertisement`
    L2Advertisement,
    /// `BGPAdvertisement`
    BgpAdvertisement,
    /// `BGPPeer`
    BgpPeer,
    /// `BFDProfile`
    BfdProfile,
    /// `Community`
    Community,
}

impl ObjectKind {
    /// The Kubernetes `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IpAddressPool => "IPAddressPool",
            Self::L2Advertisement => "L2Advertisement",
            Self::BgpAdvertisement => "BGPAdvertisement",
            Self::BgpPeer => "BGPPeer",
            Self::BfdProfile => "BFDProfile",
            Self::Community => "Community",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one object, e.g.
/// `IPAddressPool "linuxnet": spec.addresses[1]: "10.0.0.300-10.0.0.310" is not a valid range: ...`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
#[error("{kind} \"{name}\": {field}: {message}")]
pub struct ConfigError {
    /// The object's kind.
    pub kind: ObjectKind,
    /// The object's name.
    pub name: String,
    /// The path of the offending field, e.g. `spec.addresses[1]` (`metadata.namespace`, `spec`).
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
    /// The error is about a reference to another object that may simply not exist yet (a
    /// BGPPeer's `bfdProfile` or `passwordSecret`, a BGPAdvertisement's Community alias).
    /// Admission lets such an object through, as MetalLB does, so that any apply order works;
    /// loading the configuration reports it, and the object is picked up once the reference
    /// resolves.
    pub reference: bool,
}

impl ConfigError {
    /// An error about `field` of the object `kind`/`name`.
    pub fn new(
        kind: ObjectKind,
        name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            name: name.into(),
            field: field.into(),
            message: message.into(),
            reference: false,
        }
    }

    /// An error about a reference in `field` that does not resolve (yet): see
    /// [`ConfigError::reference`].
    pub fn reference(
        kind: ObjectKind,
        name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            reference: true,
            ..Self::new(kind, name, field, message)
        }
    }

    /// Whether this error says the build lacks a feature (rather than the object being wrong).
    pub fn is_unsupported(&self) -> bool {
        self.message.ends_with(UNSUPPORTED)
    }
}

/// The tail of every "this build cannot do that" message.
pub(crate) const UNSUPPORTED: &str = "is not supported by this ironlb build yet";
