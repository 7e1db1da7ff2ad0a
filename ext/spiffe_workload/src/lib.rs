//! Ruby bindings for spiffe-workload: init only. Native classes live under
//! the private `Spiffe::Native` namespace; the public API is Ruby (`lib/spiffe`).

mod helpers;
mod ruby_api;

use magnus::{prelude::*, Error, Ruby};

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    helpers::runtime::install_fork_hook();
    let spiffe = ruby.define_module("Spiffe")?;
    let native = spiffe.define_module("Native")?;
    ruby_api::init(ruby, native)
}
