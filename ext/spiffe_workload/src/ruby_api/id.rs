//! `Spiffe::Native.parse_id` / `.parse_trust_domain`: the core's parser.

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

fn parse_trust_domain(ruby: &Ruby, name: String) -> Result<String, Error> {
    guard(ruby, || {
        Ok(TrustDomain::parse(&name).or_raise(ruby)?.name().to_owned())
    })
}

/// Panics on purpose so the test suite can prove no panic reaches Ruby as
/// anything but `Spiffe::Error`.
fn panic_probe(ruby: &Ruby, message: String) -> Result<(), Error> {
    guard(ruby, || panic!("{message}"))
}

pub fn init(_ruby: &Ruby, native: RModule) -> Result<(), Error> {
    native.define_module_function("parse_id", function!(parse_id, 1))?;
    native.define_module_function("parse_trust_domain", function!(parse_trust_domain, 1))?;
    native.define_module_function("panic_probe", function!(panic_probe, 1))?;
    Ok(())
}
