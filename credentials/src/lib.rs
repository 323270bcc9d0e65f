//! gco verifiable credentials.
//!
//! In the order a credential is made and checked:
//!
//! 1. [`key`]: issuer keys (Ed25519, P-256, RSA), JOSE algorithms, JWK and Multikey.
//! 2. [`issuer`]: the issuer directory, `did:web` / `did:key`, DID documents, rotation,
//!    and the [`issuer::Resolver`] verifiers use.
//! 3. [`jcs`], [`jose`], [`di`]: RFC 8785, compact JWS (`vc+jwt`), Data Integrity
//!    `eddsa-jcs-2022`.
//!    [`shape`]: the credential document, typed (the issuance hot path).
//! 4. [`status`]: Bitstring Status List (revocation).
//!
//! The formats are specified in `docs/credentials.md`.

pub mod di;
pub mod error;
pub mod issuer;
pub mod jcs;
pub mod jose;
pub mod key;
pub mod merkle;
pub mod multibase;
pub mod shape;
pub mod status;
pub mod tsp;
pub mod vc;

pub use error::{Error, Result};
pub use issuer::{Issuer, Purpose, Resolver};
pub use key::{Alg, IssuerKey, KeyKind, PublicKey};
