//! The one macro that turns a spec and a status type into a namespaced `metallb.io` resource.

/// Declares a root resource type `$root` for `kind`/`version` with a `metadata`, a `spec`
/// (optional on the wire, defaulted when absent, as MetalLB allows) and an optional `status`.
///
/// It implements [`kube::Resource`] (so `Api<$root>` works), serializes `apiVersion` and `kind`,
/// and derives the JSON schema the CRD generator ([`crate::crd`]) embeds.
#[macro_export]
macro_rules! resource {
    (
        $(#[$attr:meta])*
        $root:ident {
            kind: $kind:literal,
            version: $version:literal,
            plural: $plural:literal,
            spec: $spec:ty,
            status: $status:ty $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug, Default, PartialEq, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $root {
            /// Standard object metadata (name, namespace, labels, ...).
            #[serde(default)]
            #[schemars(skip)]
            pub metadata: $crate::ObjectMeta,
            /// The desired state.
            #[serde(default)]
            pub spec: $spec,
            /// The observed state.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<$status>,
        }

        impl $root {
            /// The `kind` of this resource.
            pub const KIND: &'static str = $kind;
            /// The version of this type (`metallb.io/<version>`).
            pub const VERSION: &'static str = $version;
            /// The plural resource name.
            pub const PLURAL: &'static str = $plural;

            /// A new object named `name` in `namespace` with this spec and no status.
            pub fn new(name: &str, namespace: &str, spec: $spec) -> Self {
                Self {
                    metadata: $crate::ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(namespace.to_string()),
                        ..Default::default()
                    },
                    spec,
                    status: None,
                }
            }

            /// The object's name ("" when unset).
            pub fn name(&self) -> &str {
                self.metadata.name.as_deref().unwrap_or_default()
            }
        }

        impl ::serde::Serialize for $root {
            fn serialize<S: ::serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeStruct;
                let fields = 4 + usize::from(self.status.is_some());
                let mut obj = ser.serialize_struct(stringify!($root), fields)?;
                obj.serialize_field("apiVersion", concat!("metallb.io/", $version))?;
                obj.serialize_field("kind", $kind)?;
                obj.serialize_field("metadata", &self.metadata)?;
                obj.serialize_field("spec", &self.spec)?;
                if let Some(status) = &self.status {
                    obj.serialize_field("status", status)?;
                }
                obj.end()
            }
        }

        impl ::kube::Resource for $root {
            type DynamicType = ();
            type Scope = ::kube::core::NamespaceResourceScope;

            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> ::std::borrow::Cow<'_, str> {
                $crate::GROUP.into()
            }
            fn version(_: &()) -> ::std::borrow::Cow<'_, str> {
                $version.into()
            }
            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &$crate::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut $crate::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
