//! `gco keys`: node signing keys.

use std::path::PathBuf;

use anyhow::{Context, Result};
use gco_ledger::keys::{KeyType, write_private_key_file};
use gco_ledger::{KeyFileSigner, PublicKey, Signer};
use serde_json::json;

use crate::cli::{Global, KeyAlgorithm, KeysCommand};
use crate::output::print_json;

pub fn run(cmd: KeysCommand, g: &Global) -> Result<u8> {
    match cmd {
        KeysCommand::Generate {
            algorithm,
            out,
            public_out,
        } => {
            let key_type = match algorithm {
                KeyAlgorithm::Ed25519 => KeyType::Ed25519,
                KeyAlgorithm::P256 => KeyType::P256,
                KeyAlgorithm::Rsa3072 => KeyType::Rsa3072,
                KeyAlgorithm::Rsa4096 => KeyType::Rsa4096,
            };
            let public_out = public_out.unwrap_or_else(|| {
                let mut p = out.clone().into_os_string();
                p.push(".pub");
                PathBuf::from(p)
            });
            if public_out.exists() {
                anyhow::bail!(
                    "{} already exists; refusing to overwrite a key",
                    public_out.display()
                );
            }
            let signer = KeyFileSigner::generate(key_type)?;
            write_private_key_file(&out, &signer)
                .with_context(|| "writing the private key (it must not exist yet)")?;
            std::fs::write(&public_out, signer.public_key().to_pem())
                .with_context(|| format!("writing {}", public_out.display()))?;
            if g.json {
                print_json(&json!({
                    "key_id": signer.key_id(),
                    "algorithm": signer.algorithm(),
                    "private_key": out,
                    "public_key": public_out,
                }))?;
            } else {
                eprintln!(
                    "generated {} key {}\n  private: {} (mode 0600, keep it on the node)\n  public:  {}\nnext: gco node register --node NODE --public-key {} --zone ZONE --site SITE",
                    signer.algorithm(),
                    signer.key_id(),
                    out.display(),
                    public_out.display(),
                    public_out.display()
                );
            }
            Ok(0)
        }
        KeysCommand::Show { key } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let public = if text.contains("PRIVATE KEY") {
                KeyFileSigner::from_pkcs8_pem(&text)
                    .with_context(|| format!("{}", key.display()))?
                    .public_key()
                    .clone()
            } else {
                PublicKey::from_pem(&text).with_context(|| format!("{}", key.display()))?
            };
            if g.json {
                print_json(&json!({
                    "key_id": public.key_id(),
                    "algorithm": public.algorithm(),
                    "public_key_pem": public.to_pem(),
                }))?;
            } else {
                println!(
                    "key_id:    {}\nalgorithm: {}\n{}",
                    public.key_id(),
                    public.algorithm(),
                    public.to_pem()
                );
            }
            Ok(0)
        }
    }
}
