//! Owned core values to Ruby values (binary strings, arrays, hashes).

use magnus::{prelude::*, IntoValue, RArray, RHash, RString, Ruby, Value};
use serde_json::Value as Json;
use spiffe_core::bundle::{JwtAuthority, JwtBundle, X509Bundle};
use spiffe_core::client::X509Context;
use spiffe_core::id::TrustDomain;
use spiffe_core::jwt::JwtSvid;
use spiffe_core::x509::X509Svid;
use std::collections::BTreeMap;

pub fn binary(ruby: &Ruby, bytes: &[u8]) -> RString {
    ruby.str_from_slice(bytes)
}

pub fn ders(ruby: &Ruby, items: &[Vec<u8>]) -> RArray {
    ruby.ary_from_iter(items.iter().map(|der| binary(ruby, der)))
}

fn strings(ruby: &Ruby, items: &[String]) -> RArray {
    ruby.ary_from_iter(items.iter().map(|s| ruby.str_new(s)))
}

/// JSON to Ruby: objects become Hashes with String keys.
pub fn json(ruby: &Ruby, value: &Json) -> Value {
    match value {
        Json::Null => ruby.qnil().as_value(),
        Json::Bool(b) => b.into_value_with(ruby),
        Json::Number(n) => match n.as_i64() {
            Some(i) => i.into_value_with(ruby),
            None => n.as_f64().unwrap_or(f64::NAN).into_value_with(ruby),
        },
        Json::String(s) => ruby.str_new(s).as_value(),
        Json::Array(items) => ruby
            .ary_from_iter(items.iter().map(|v| json(ruby, v)))
            .as_value(),
        Json::Object(map) => object(ruby, map).as_value(),
    }
}

pub fn object(ruby: &Ruby, map: &serde_json::Map<String, Json>) -> RHash {
    let hash = ruby.hash_new();
    for (k, v) in map {
        let _ = hash.aset(ruby.str_new(k), json(ruby, v));
    }
    hash
}

/// `[spiffe_id, [der, ...], key_der, hint, expires_at]`
pub fn x509_svid(ruby: &Ruby, svid: &X509Svid) -> RArray {
    let row = ruby.ary_new_capa(5);
    let _ = row.push(ruby.str_new(&svid.spiffe_id.to_string()));
    let _ = row.push(ders(ruby, &svid.cert_chain));
    let _ = row.push(binary(ruby, &svid.private_key));
    let _ = row.push(ruby.str_new(&svid.hint));
    let _ = row.push(svid.expires_at);
    row
}

/// `[[svid, ...], {trust_domain_name => [der, ...]}]`: one update's SVIDs and bundles.
pub fn x509_context(ruby: &Ruby, ctx: &X509Context) -> RArray {
    let pair = ruby.ary_new_capa(2);
    let _ = pair.push(ruby.ary_from_iter(ctx.svids.iter().map(|s| x509_svid(ruby, s))));
    let _ = pair.push(x509_bundles(ruby, &ctx.bundles));
    pair
}

/// `{trust_domain_name => [der, ...]}`
pub fn x509_bundles(ruby: &Ruby, bundles: &BTreeMap<TrustDomain, X509Bundle>) -> RHash {
    let hash = ruby.hash_new();
    for (td, bundle) in bundles {
        let _ = hash.aset(ruby.str_new(td.name()), ders(ruby, &bundle.authorities));
    }
    hash
}

/// `[token, spiffe_id, [aud, ...], expires_at, claims, hint]`
pub fn jwt_svid(ruby: &Ruby, svid: &JwtSvid) -> RArray {
    let row = ruby.ary_new_capa(6);
    let _ = row.push(ruby.str_new(&svid.token));
    let _ = row.push(ruby.str_new(&svid.spiffe_id.to_string()));
    let _ = row.push(strings(ruby, &svid.audience));
    let _ = row.push(svid.expires_at);
    let _ = row.push(object(ruby, &svid.claims));
    let _ = row.push(ruby.str_new(&svid.hint));
    row
}

/// `{trust_domain_name => [jwks_json, [[kid, spki_der], ...]]}`
pub fn jwt_bundles(ruby: &Ruby, bundles: &BTreeMap<TrustDomain, JwtBundle>) -> RHash {
    let hash = ruby.hash_new();
    for (td, bundle) in bundles {
        let row = ruby.ary_new_capa(2);
        let _ = row.push(ruby.str_new(&bundle.jwks));
        let _ = row.push(jwt_authorities(ruby, &bundle.authorities));
        let _ = hash.aset(ruby.str_new(td.name()), row);
    }
    hash
}

/// `[[kid, spki_der], ...]`
pub fn jwt_authorities(ruby: &Ruby, authorities: &[JwtAuthority]) -> RArray {
    ruby.ary_from_iter(authorities.iter().map(|a| {
        let pair = ruby.ary_new_capa(2);
        let _ = pair.push(ruby.str_new(&a.key_id));
        let _ = pair.push(binary(ruby, &a.public_key));
        pair
    }))
}
