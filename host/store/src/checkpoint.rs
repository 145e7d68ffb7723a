//! Signed audit checkpoints: the chain's head (sequence and hash) and the time,
//! signed with an Ed25519 key derived from the master key. Kept outside the host
//! (a file on other storage, an HTTP endpoint), a checkpoint proves later that
//! nothing up to its sequence was removed or changed, even by someone who can
//! rewrite the database and its head file.

use crate::StoreError;
use crate::crypto::MasterKey;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The format a checkpoint names itself with.
pub const FORMAT: &str = "tenure-audit-checkpoint/1";

/// One signed checkpoint, as written (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    /// The last entry the checkpoint covers.
    pub seq: i64,
    /// That entry's hash (it covers every entry before it).
    pub head_hash: String,
    /// When it was taken (milliseconds since the epoch).
    pub time_ms: i64,
    /// The signer's Ed25519 public key (base64).
    pub public_key: String,
    /// The Ed25519 signature over the fields above (base64).
    pub signature: String,
}

/// Why a checkpoint cannot be trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("line {line}: not a checkpoint: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("the file holds no checkpoint")]
    Empty,
    #[error("checkpoint at entry {seq}: format {found:?}, expected {FORMAT:?}")]
    Format { seq: i64, found: String },
    #[error("checkpoint at entry {seq}: signed by another key ({found}), expected {expected}")]
    OtherKey {
        seq: i64,
        found: String,
        expected: String,
    },
    #[error("checkpoint at entry {seq}: the signature does not match its fields (altered)")]
    BadSignature { seq: i64 },
}

/// The bytes a checkpoint's signature covers.
fn signed_bytes(seq: i64, head_hash: &str, time_ms: i64) -> Vec<u8> {
    format!("{FORMAT}\n{seq}\n{head_hash}\n{time_ms}\n").into_bytes()
}

/// Signs checkpoints with the deployment's checkpoint key.
pub struct CheckpointSigner {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner({})", self.public_key())
    }
}

impl CheckpointSigner {
    /// The key derived from the master key (the same on every host of a deployment).
    pub fn from_master(master: &MasterKey) -> Result<Self, StoreError> {
        let seed = master.derive("tenure audit checkpoint v1");
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| StoreError::Crypto(format!("checkpoint key: {e}")))?;
        Ok(CheckpointSigner { pair })
    }

    /// The public key (base64) that verifies this signer's checkpoints.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// A checkpoint of the chain at `seq` / `head_hash`.
    pub fn sign(&self, seq: i64, head_hash: &str, time_ms: i64) -> Checkpoint {
        let signature = self.pair.sign(&signed_bytes(seq, head_hash, time_ms));
        Checkpoint {
            format: FORMAT.into(),
            seq,
            head_hash: head_hash.into(),
            time_ms,
            public_key: self.public_key(),
            signature: STANDARD.encode(signature.as_ref()),
        }
    }
}

impl Checkpoint {
    /// Checks the signature against the key the verifier trusts (not the key the
    /// checkpoint names, which anyone could replace along with the signature).
    pub fn verify(&self, trusted_public_key: &str) -> Result<(), CheckpointError> {
        if self.format != FORMAT {
            return Err(CheckpointError::Format {
                seq: self.seq,
                found: self.format.clone(),
            });
        }
        if self.public_key != trusted_public_key {
            return Err(CheckpointError::OtherKey {
                seq: self.seq,
                found: self.public_key.clone(),
                expected: trusted_public_key.into(),
            });
        }
        let bad = || CheckpointError::BadSignature { seq: self.seq };
        let key = STANDARD.decode(trusted_public_key).map_err(|_| bad())?;
        let signature = STANDARD.decode(&self.signature).map_err(|_| bad())?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&signed_bytes(self.seq, &self.head_hash, self.time_ms), &signature)
            .map_err(|_| bad())
    }

    /// One line of a checkpoint file (JSON, newline-terminated).
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// Every checkpoint in a file of JSON lines (blank lines skipped); a file with
    /// none is an error, so an emptied file does not verify as "nothing to check".
    pub fn parse_all(text: &str) -> Result<Vec<Checkpoint>, CheckpointError> {
        let mut found = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let checkpoint = serde_json::from_str(line).map_err(|e| CheckpointError::Malformed {
                line: index + 1,
                reason: e.to_string(),
            })?;
            found.push(checkpoint);
        }
        if found.is_empty() {
            return Err(CheckpointError::Empty);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(byte: u8) -> CheckpointSigner {
        CheckpointSigner::from_master(&MasterKey::from_bytes([byte; 32])).unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_under_its_signers_key_only() {
        let signer = signer(7);
        let checkpoint = signer.sign(42, "ab12", 1_700_000_000_000);
        assert_eq!(checkpoint.verify(&signer.public_key()), Ok(()));
        let parsed = Checkpoint::parse_all(&format!("\n{}", checkpoint.to_line())).unwrap();
        assert_eq!(parsed, vec![checkpoint.clone()]);

        let stranger = self::signer(8);
        assert!(matches!(
            checkpoint.verify(&stranger.public_key()),
            Err(CheckpointError::OtherKey { seq: 42, .. })
        ));
        // Re-signed by a stranger who also swapped the named key: still not trusted.
        let forged = stranger.sign(42, "ab12", 1_700_000_000_000);
        assert!(forged.verify(&signer.public_key()).is_err());
    }

    #[test]
    fn an_altered_field_breaks_the_signature() {
        let signer = signer(7);
        let key = signer.public_key();
        let good = signer.sign(42, "ab12", 1_700_000_000_000);
        let altered = [
            Checkpoint {
                seq: 41,
                ..good.clone()
            },
            Checkpoint {
                head_hash: "ab13".into(),
                ..good.clone()
            },
            Checkpoint {
                time_ms: 1,
                ..good.clone()
            },
            Checkpoint {
                signature: "not base64!".into(),
                ..good.clone()
            },
        ];
        for checkpoint in altered {
            assert!(
                matches!(checkpoint.verify(&key), Err(CheckpointError::BadSignature { .. })),
                "{checkpoint:?}"
            );
        }
        let other_format = Checkpoint {
            format: "v0".into(),
            ..good
        };
        assert!(matches!(
            other_format.verify(&key),
            Err(CheckpointError::Format { .. })
        ));
    }

    #[test]
    fn a_file_without_checkpoints_or_with_a_bad_line_is_refused_with_the_line() {
        assert_eq!(Checkpoint::parse_all("\n  \n"), Err(CheckpointError::Empty));
        let line = signer(1).sign(1, "x", 2).to_line();
        let err = Checkpoint::parse_all(&format!("{line}{{\"seq\": 2}}\n")).unwrap_err();
        assert!(matches!(err, CheckpointError::Malformed { line: 2, .. }), "{err}");
    }
}
