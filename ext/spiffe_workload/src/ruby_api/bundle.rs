//! `Spiffe::Native.parse_spiffe_bundle`, `.marshal_spiffe_bundle`,
//! `.parse_jwks`, `.marshal_jwks`: bundle documents in and out.

use crate::helpers::convert::{binary, ders, jwt_authorities};
use crate::helpers::errors::{guard, IntoRuby};
use magnus::{function, Error, RArray, RModule, RString, Ruby};
use spiffe_core::bundle::{parse_jwt_bundle, JwtAuthority};
use spiffe_core::der::split_concatenated;
use spiffe_core::id::TrustDomain;
use spiffe_core::spiffe_bundle::{self, SpiffeBundle};

fn bytes(string: RString) -> Vec<u8> {
    // SAFETY: copied at once, before any Ruby call can move the string.
    unsafe { string.as_slice() }.to_vec()
}

/// DER values passed concatenated (each is a self-delimiting SEQUENCE).
fn split(ruby: &Ruby, what: &str, der: RString) -> Result<Vec<Vec<u8>>, Error> {
    let bytes = bytes(der);
    let items = split_concatenated(&bytes)
        .ok_or_else(|| spiffe_core::Error::bundle(format!("{what} are not DER")))
        .or_raise(ruby)?;
    Ok(items.into_iter().map(<[u8]>::to_vec).collect())
}

/// JWT authorities from key IDs and their concatenated SubjectPublicKeyInfo DER.
fn authorities(
    ruby: &Ruby,
    key_ids: Vec<String>,
    keys: RString,
) -> Result<Vec<JwtAuthority>, Error> {
    let keys = split(ruby, "JWT authorities", keys)?;
    if keys.len() != key_ids.len() {
        return Err(spiffe_core::Error::bundle(
            "one key ID per JWT authority is needed",
        ))
        .or_raise(ruby);
    }
    Ok(key_ids
        .into_iter()
        .zip(keys)
        .map(|(key_id, public_key)| JwtAuthority { key_id, public_key })
        .collect())
}

/// `[[der, ...], [[kid, spki_der], ...], sequence_number, refresh_hint]`
fn parse_spiffe_bundle(
    ruby: &Ruby,
    trust_domain: String,
    document: RString,
) -> Result<RArray, Error> {
    guard(ruby, || {
        let td = TrustDomain::parse(&trust_domain).or_raise(ruby)?;
        let bundle = spiffe_bundle::parse(td, &bytes(document)).or_raise(ruby)?;
        let row = ruby.ary_new_capa(4);
        row.push(ders(ruby, &bundle.x509_authorities))?;
        row.push(jwt_authorities(ruby, &bundle.jwt_authorities))?;
        row.push(bundle.sequence_number)?;
        row.push(bundle.refresh_hint)?;
        Ok(row)
    })
}

fn marshal_spiffe_bundle(
    ruby: &Ruby,
    trust_domain: String,
    x509_authorities: RString,
    key_ids: Vec<String>,
    keys: RString,
    sequence_number: Option<u64>,
    refresh_hint: Option<i64>,
) -> Result<String, Error> {
    guard(ruby, || {
        let bundle = SpiffeBundle {
            trust_domain: TrustDomain::parse(&trust_domain).or_raise(ruby)?,
            x509_authorities: split(ruby, "X.509 authorities", x509_authorities)?,
            jwt_authorities: authorities(ruby, key_ids, keys)?,
            sequence_number,
            refresh_hint,
        };
        bundle.marshal().or_raise(ruby)
    })
}

/// `[[kid, spki_der], ...]` of a JWKS document.
fn parse_jwks(ruby: &Ruby, trust_domain: String, document: RString) -> Result<RArray, Error> {
    guard(ruby, || {
        let td = TrustDomain::parse(&trust_domain).or_raise(ruby)?;
        let bundle = parse_jwt_bundle(td, &bytes(document)).or_raise(ruby)?;
        Ok(jwt_authorities(ruby, &bundle.authorities))
    })
}

fn marshal_jwks(ruby: &Ruby, key_ids: Vec<String>, keys: RString) -> Result<String, Error> {
    guard(ruby, || {
        spiffe_bundle::marshal_jwks(&authorities(ruby, key_ids, keys)?).or_raise(ruby)
    })
}

/// Splits concatenated DER certificates (as the Workload API sends them).
fn split_der(ruby: &Ruby, der: RString) -> Result<RArray, Error> {
    guard(ruby, || {
        let certs = spiffe_core::x509::parse_certificates(&bytes(der))
            .map_err(|e| spiffe_core::Error::bundle(format!("cannot parse DER certificates: {e}")))
            .or_raise(ruby)?;
        Ok(ruby.ary_from_iter(certs.iter().map(|c| binary(ruby, c))))
    })
}

pub fn init(_ruby: &Ruby, native: RModule) -> Result<(), Error> {
    native.define_module_function("parse_spiffe_bundle", function!(parse_spiffe_bundle, 2))?;
    native.define_module_function("marshal_spiffe_bundle", function!(marshal_spiffe_bundle, 6))?;
    native.define_module_function("parse_jwks", function!(parse_jwks, 2))?;
    native.define_module_function("marshal_jwks", function!(marshal_jwks, 2))?;
    native.define_module_function("split_der", function!(split_der, 1))?;
    Ok(())
}
