//! What the fakes' token endpoints share: checking a signed JWT assertion (RS256) against the
//! public half of the key the test configured, and reading its claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value as Json;

/// The claims of `assertion` when it is signed by the RSA key whose public half (PKCS#1 DER) is
/// `public_key`; `None` when it is malformed or the signature does not hold.
pub fn verified_claims(public_key: &[u8], assertion: &str) -> Option<Json> {
    let (input, signature) = assertion.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(input.as_bytes(), &signature)
        .ok()?;
    let (_, claims) = input.split_once('.')?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
}
