//! Native classes, one file each, all under `Spiffe::Native`.

mod agent;
mod bundle;
mod client;
mod id;
mod jwt;
mod watcher;

use magnus::{Error, RModule, Ruby};

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    client::init(ruby, native)?;
    agent::init(ruby, native)?;
    watcher::init(ruby, native)?;
    jwt::init(ruby, native)?;
    bundle::init(ruby, native)?;
    id::init(ruby, native)
}
