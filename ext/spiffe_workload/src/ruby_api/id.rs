//! `Spiffe::Native.parse_id`, `.id_path`, `.parse_trust_domain`, `.parse_x509_svid`: the core's parsers.

use crate::helpers::errors::{guard, IntoRuby};
use magnus::{function, Error, RModule, Ruby};
use spiffe_core::id::{SpiffeId, TrustDomain};

/// `[trust_domain_name, path]`
fn parse_id(ruby: &Ruby, id: String) -> Result<(String, String), Error> {
    guard(ruby, || {
        let id = SpiffeId::parse(&id).or_raise(ruby)?;
        Ok((id.trust_domain().name().to_owned(), id.path().to_owned()))
    })
}

/// `path` of the ID built from a trust domain and a path, or from segments.
fn id_path(
    ruby: &Ruby,
    trust_domain: String,
    path: String,
    segments: Option<Vec<String>>,
) -> Result<String, Error> {
    guard(ruby, || {
        let td = TrustDomain::parse(&trust_domain).or_raise(ruby)?;
        let id = match segments {
            Some(segments) => SpiffeId::from_segments(&td, &segments),
            None => SpiffeId::from_path(&td, &path),
        }
        .or_raise(ruby)?;
        Ok(id.path().to_owned())
    })
}

fn parse_trust_domain(ruby: &Ruby, name: String) -> Result<String, Error> {
    guard(ruby, || {
        Ok(TrustDomain::parse(&name).or_raise(ruby)?.name().to_owned())
    })
}

/// Checks an X.509-SVID (concatenated DER chain, PKCS#8 DER key) as the
/// Workload API client does; returns `[spiffe_id, [der...], key_der, hint, expires_at]`.
fn parse_x509_svid(
    ruby: &Ruby,
    chain: magnus::RString,
    key: magnus::RString,
) -> Result<magnus::RArray, Error> {
    guard(ruby, || {
        // SAFETY: both slices are copied before any Ruby call can move the strings.
        let (chain, key) = unsafe { (chain.as_slice().to_vec(), key.as_slice().to_vec()) };
        let svid = spiffe_core::x509::parse_svid(&chain, &key, "").or_raise(ruby)?;
        Ok(crate::helpers::convert::x509_svid(ruby, &svid))
    })
}

/// Panics on purpose so the test suite can prove no panic reaches Ruby as
/// anything but `Spiffe::Error`.
fn panic_probe(ruby: &Ruby, message: String) -> Result<(), Error> {
    guard(ruby, || panic!("{message}"))
}

pub fn init(_ruby: &Ruby, native: RModule) -> Result<(), Error> {
    native.define_module_function("parse_id", function!(parse_id, 1))?;
    native.define_module_function("id_path", function!(id_path, 3))?;
    native.define_module_function("parse_trust_domain", function!(parse_trust_domain, 1))?;
    native.define_module_function("parse_x509_svid", function!(parse_x509_svid, 2))?;
    native.define_module_function("panic_probe", function!(panic_probe, 1))?;
    Ok(())
}
