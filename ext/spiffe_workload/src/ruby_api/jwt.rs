//! `Spiffe::Native.jwt_*`: offline JWT-SVID parsing and validation.
//! `Spiffe::JWTSVID.parse_and_validate` / `.parse_insecure` are the public face.

use crate::helpers::convert;
use crate::helpers::errors::{guard, IntoRuby};
use magnus::{function, Error, RArray, RModule, RString, Ruby};
use openssl::pkey::PKey;
use spiffe_core::jwt::{self, now_unix, Authority};
use spiffe_core::Error as CoreError;

/// `[trust_domain_name, kid]` of a token, to find its key; raises
/// `JWTMalformedError` for anything that is not a JWT-SVID.
fn jwt_peek(ruby: &Ruby, token: String) -> Result<(String, Option<String>), Error> {
    guard(ruby, || {
        let (id, kid) = jwt::peek(&token).or_raise(ruby)?;
        Ok((id.trust_domain().name().to_owned(), kid))
    })
}

/// Validates `token` for `audience` with the authority's key (SPKI DER), or
/// none: `has_bundle` tells "no bundle" from "no key with that kid".
fn jwt_validate(
    ruby: &Ruby,
    token: String,
    audience: Vec<String>,
    has_bundle: bool,
    key_der: Option<RString>,
) -> Result<RArray, Error> {
    guard(ruby, || {
        // SAFETY: copied before any Ruby call can move the string.
        let der = key_der.map(|s| unsafe { s.as_slice() }.to_vec());
        let key = match der {
            Some(der) => Some(
                PKey::public_key_from_der(&der)
                    .map_err(|_| CoreError::bundle("invalid JWT authority key"))
                    .or_raise(ruby)?,
            ),
            None => None,
        };
        let authority = |_: &_, _: &str| match (has_bundle, key) {
            (false, _) => Authority::NoBundle,
            (true, None) => Authority::NoKey,
            (true, Some(key)) => Authority::Key(key),
        };
        let svid =
            jwt::parse_and_validate(&token, &audience, authority, now_unix()).or_raise(ruby)?;
        Ok(convert::jwt_svid(ruby, &svid))
    })
}

fn jwt_parse_insecure(ruby: &Ruby, token: String, audience: Vec<String>) -> Result<RArray, Error> {
    guard(ruby, || {
        let svid = jwt::parse_insecure(&token, &audience, "", now_unix()).or_raise(ruby)?;
        Ok(convert::jwt_svid(ruby, &svid))
    })
}

pub fn init(_ruby: &Ruby, native: RModule) -> Result<(), Error> {
    native.define_module_function("jwt_peek", function!(jwt_peek, 1))?;
    native.define_module_function("jwt_validate", function!(jwt_validate, 4))?;
    native.define_module_function("jwt_parse_insecure", function!(jwt_parse_insecure, 2))?;
    Ok(())
}
