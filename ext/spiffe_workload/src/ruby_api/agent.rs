//! `Spiffe::Native::Agent`: the embedded Workload API server, served from
//! this process's runtime. `Spiffe::Testing::Agent` is the public face.

use crate::helpers::convert::binary;
use crate::helpers::errors::{guard, IntoRuby};
use crate::helpers::nogvl::block_on;
use crate::helpers::runtime::ForkLocal;
use magnus::{function, method, prelude::*, Error, RModule, RString, Ruby};
use spiffe_core::agent::{Agent, EntryConfig, Fault};
use spiffe_core::{Error as CoreError, ErrorKind};
use std::sync::Mutex;

#[magnus::wrap(class = "Spiffe::Native::Agent", free_immediately, size)]
pub struct NativeAgent {
    agent: Mutex<Option<ForkLocal<Agent>>>,
    socket_path: String,
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, CoreError> {
    serde_json::from_str(json).map_err(|e| CoreError::config(format!("invalid {what}: {e}")))
}

impl NativeAgent {
    fn start(ruby: &Ruby, config_json: String) -> Result<Self, Error> {
        guard(ruby, || {
            let config = Agent::config_from_json(&config_json).or_raise(ruby)?;
            let socket_path = config.socket_path.display().to_string();
            let agent = block_on(ruby, Agent::start(config))?.or_raise(ruby)?;
            Ok(Self {
                agent: Mutex::new(Some(ForkLocal::new(agent))),
                socket_path,
            })
        })
    }

    fn with_agent<T>(
        &self,
        ruby: &Ruby,
        f: impl FnOnce(&Agent) -> Result<T, CoreError>,
    ) -> Result<T, Error> {
        let agent = self.agent.lock().unwrap_or_else(|p| p.into_inner());
        match agent.as_ref().map(ForkLocal::get) {
            Some(Some(agent)) => f(agent).or_raise(ruby),
            Some(None) => Err(CoreError::new(
                ErrorKind::Closed,
                "this agent belongs to the parent process; start a new one after fork",
            ))
            .or_raise(ruby),
            None => Err(CoreError::new(ErrorKind::Closed, "the agent was stopped")).or_raise(ruby),
        }
    }

    fn peer_pids(ruby: &Ruby, rb_self: &Self) -> Result<Vec<i32>, Error> {
        guard(ruby, || rb_self.with_agent(ruby, |a| Ok(a.peer_pids())))
    }

    fn socket_path(&self) -> String {
        self.socket_path.clone()
    }

    fn bundle_der(ruby: &Ruby, rb_self: &Self) -> Result<RString, Error> {
        guard(ruby, || {
            rb_self
                .with_agent(ruby, |a| Ok(a.bundle_der()))
                .map(|der| binary(ruby, &der))
        })
    }

    fn jwks(ruby: &Ruby, rb_self: &Self) -> Result<String, Error> {
        guard(ruby, || rb_self.with_agent(ruby, |a| Ok(a.jwks())))
    }

    fn add_entry(ruby: &Ruby, rb_self: &Self, entry_json: String) -> Result<String, Error> {
        guard(ruby, || {
            rb_self.with_agent(ruby, |a| {
                a.add_entry(&parse_json::<EntryConfig>("entry", &entry_json)?)
            })
        })
    }

    fn remove_entry(ruby: &Ruby, rb_self: &Self, spiffe_id: String) -> Result<usize, Error> {
        guard(ruby, || {
            rb_self.with_agent(ruby, |a| Ok(a.remove_entry(&spiffe_id)))
        })
    }

    fn set_fault(ruby: &Ruby, rb_self: &Self, fault_json: String) -> Result<(), Error> {
        guard(ruby, || {
            rb_self.with_agent(ruby, |a| {
                a.set_fault(parse_json::<Fault>("fault", &fault_json)?);
                Ok(())
            })
        })
    }

    /// Stops serving and removes the socket. Idempotent.
    fn stop(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        guard(ruby, || {
            let taken = rb_self
                .agent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(mut agent) = taken.and_then(ForkLocal::into_inner) {
                block_on(ruby, async move { agent.stop().await })?;
            }
            Ok(())
        })
    }

    fn running(&self) -> bool {
        matches!(
            self.agent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(ForkLocal::get),
            Some(Some(_))
        )
    }
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let class = native.define_class("Agent", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("start", function!(NativeAgent::start, 1))?;
    class.define_method("socket_path", method!(NativeAgent::socket_path, 0))?;
    class.define_method("bundle_der", method!(NativeAgent::bundle_der, 0))?;
    class.define_method("peer_pids", method!(NativeAgent::peer_pids, 0))?;
    class.define_method("jwks", method!(NativeAgent::jwks, 0))?;
    class.define_method("add_entry", method!(NativeAgent::add_entry, 1))?;
    class.define_method("remove_entry", method!(NativeAgent::remove_entry, 1))?;
    class.define_method("fault=", method!(NativeAgent::set_fault, 1))?;
    class.define_method("stop", method!(NativeAgent::stop, 0))?;
    class.define_method("running?", method!(NativeAgent::running, 0))?;
    Ok(())
}
