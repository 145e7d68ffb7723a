//! Keys derived from the deployment's master key. Every host of a deployment holds the
//! same master key (from configuration), so each derives the same keys: one host opens
//! what another sealed, and verifies what another signed.

use crate::StoreResult;
use crate::checkpoint::CheckpointSigner;
use crate::crypto::MasterKey;

/// What a store derives from its master key.
pub trait StoreKeys {
    /// The master key the store was opened with.
    fn master_key(&self) -> &MasterKey;

    /// The key that authenticates compiled components cached on disk.
    fn component_cache_key(&self) -> [u8; 32] {
        self.master_key().component_cache_key()
    }

    /// The Ed25519 key that signs this deployment's audit checkpoints.
    fn checkpoint_signer(&self) -> StoreResult<CheckpointSigner> {
        CheckpointSigner::from_master(self.master_key())
    }

    /// The key that seals people's OpenID sign-ins under way.
    fn sign_in_key(&self) -> [u8; 32] {
        self.master_key().derive("tenure oidc sign-in v1")
    }
}
