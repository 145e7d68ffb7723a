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

/// A DPoP proof (RFC 9449) as a server checks it: typed `dpop+jwt`, ES256, signed by the P-256 key
/// its header carries. Its claims and that key's thumbprint (RFC 7638), or `None`.
pub fn verified_dpop_proof(proof: &str) -> Option<(Json, String)> {
    let part = |p: &str| -> Option<Json> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok() };
    let (input, signature) = proof.rsplit_once('.')?;
    let (header, claims) = input.split_once('.')?;
    let (header, claims) = (part(header)?, part(claims)?);
    let jwk = &header["jwk"];
    if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" || jwk["kty"] != "EC" || jwk["crv"] != "P-256"
    {
        return None;
    }
    let coordinate = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str()?).ok();
    let point = [vec![4], coordinate("x")?, coordinate("y")?].concat();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).ok()?)
        .ok()?;
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str()?,
        jwk["y"].as_str()?
    );
    Some((claims, sha256_b64(canonical.as_bytes())))
}

/// SHA-256, base64url (a DPoP proof's `ath`, a JWK thumbprint).
pub fn sha256_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}
