//! The lab's certificates: one CA, the API server's serving certificate, client certificates for
//! the admin and the control-plane components, and the service-account signing key.
//! Generated once per lab directory; a second `up` reuses them.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Paths of the PEM files in `<lab>/pki/`.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// A client identity: the certificate's CN is the user, O the groups.
#[derive(Debug, Clone, Copy)]
pub struct ClientIdentity {
    /// File stem and kubeconfig name.
    pub file: &'static str,
    /// Kubernetes user name (certificate CN).
    pub user: &'static str,
    /// Kubernetes groups (certificate O).
    pub group: Option<&'static str>,
}

/// The identities the lab issues client certificates for.
pub const CLIENTS: [ClientIdentity; 3] = [
    ClientIdentity {
        file: "admin",
        user: "lab-admin",
        group: Some("system:masters"),
    },
    ClientIdentity {
        file: "controller-manager",
        user: "system:kube-controller-manager",
        group: None,
    },
    ClientIdentity {
        file: "scheduler",
        user: "system:kube-scheduler",
        group: None,
    },
];

impl Pki {
    /// The PKI under `<lab_dir>/pki`.
    pub fn new(lab_dir: &Path) -> Self {
        Pki {
            dir: lab_dir.join("pki"),
        }
    }

    /// `<pki>/<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates whatever is missing. `server_ips` go into the API server's certificate.
    pub fn ensure(&self, server_ips: &[IpAddr]) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        if self.path("ca.crt").exists() && self.path("sa.key").exists() {
            return Ok(());
        }
        let ca_key = KeyPair::generate()?;
        let ca_params = ca_params()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        // Kept so that identities known only later (a real node's kubelet) can be issued.
        self.write("ca.key", &ca_key.serialize_pem())?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut sans: Vec<SanType> = server_ips
            .iter()
            .map(|ip| SanType::IpAddress(*ip))
            .collect();
        for dns in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            sans.push(SanType::DnsName(dns.try_into()?));
        }
        let mut server = CertificateParams::new(Vec::<String>::new())?;
        server.distinguished_name = name("kube-apiserver", None);
        server.subject_alt_names = sans;
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &issuer)?;
        self.write("apiserver.crt", &server_cert.pem())?;
        self.write("apiserver.key", &server_key.serialize_pem())?;

        for client in CLIENTS {
            self.issue_client(&issuer, client.file, client.user, client.group)?;
        }

        let sa = KeyPair::generate()?;
        self.write("sa.key", &sa.serialize_pem())?;
        self.write("sa.pub", &sa.public_key_pem())?;
        // The CA goes last: its presence marks a complete PKI.
        self.write("ca.crt", &ca_cert.pem())?;
        Ok(())
    }

    /// Makes sure `<file>.crt`/`<file>.key` hold a client certificate for `user` in `group`,
    /// signed by the lab's CA; an existing pair is kept. Fails on a PKI made before the CA key
    /// was kept (`ironlb-lab down` and up again renews it).
    pub fn ensure_client(&self, file: &str, user: &str, group: Option<&str>) -> Result<()> {
        if self.path(&format!("{file}.crt")).exists() && self.path(&format!("{file}.key")).exists()
        {
            return Ok(());
        }
        let key_path = self.path("ca.key");
        let pem = std::fs::read_to_string(&key_path).with_context(|| {
            format!(
                "reading {} (a PKI from before it was kept?)",
                key_path.display()
            )
        })?;
        let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(&pem)?);
        self.issue_client(&issuer, file, user, group)
    }

    fn issue_client(
        &self,
        issuer: &Issuer<'_, KeyPair>,
        file: &str,
        user: &str,
        group: Option<&str>,
    ) -> Result<()> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(user, group);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, issuer)?;
        // The key first: a certificate without its key would count as issued.
        self.write(&format!("{file}.key"), &key.serialize_pem())?;
        self.write(&format!("{file}.crt"), &cert.pem())
    }

    fn write(&self, file: &str, pem: &str) -> Result<()> {
        let path = self.path(file);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))
    }

    /// A kubeconfig for `client` against `server` (https URL), certificates embedded.
    pub fn kubeconfig(&self, client: &ClientIdentity, server: &str) -> Result<String> {
        self.kubeconfig_for(client.file, server)
    }

    /// A kubeconfig with the certificate pair `<file>.crt`/`<file>.key` against `server`.
    pub fn kubeconfig_for(&self, file: &str, server: &str) -> Result<String> {
        use base64::Engine;
        let b64 = |file: &str| -> Result<String> {
            let data = std::fs::read(self.path(file))
                .with_context(|| format!("reading {}", self.path(file).display()))?;
            Ok(base64::engine::general_purpose::STANDARD.encode(data))
        };
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "lab", "cluster": {
                "server": server,
                "certificate-authority-data": b64("ca.crt")?,
            }}],
            "users": [{"name": file, "user": {
                "client-certificate-data": b64(&format!("{file}.crt"))?,
                "client-key-data": b64(&format!("{file}.key"))?,
            }}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": file}}],
            "current-context": "lab",
        });
        Ok(serde_yaml::to_string(&config)?)
    }
}

/// The lab CA's parameters; the same on every call, so the kept key re-creates its issuer.
fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name("ironlb-lab-ca", None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn name(common: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common);
    if let Some(org) = org {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}
