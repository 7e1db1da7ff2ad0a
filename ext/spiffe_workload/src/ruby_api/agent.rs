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
use std::time::Duration;

#[magnus::wrap(class = "Spiffe::Native::Agent", free_immediately, size)]
pub struct NativeAgent {
    agent: Mutex<Option<ForkLocal<Agent>>>,
    socket_path: String,
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, CoreError> {
    serde_json::from_str(json).map_err(|e| CoreError::config(format!("invalid {what}: {e}")))
}

fn closed(message: &str) -> CoreError {
    CoreError::new(ErrorKind::Closed, message)
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

    /// Runs `f` on the agent under its lock; the Ruby error is built after
    /// the lock is released (see `NativeClient::client`).
    fn with_agent<T>(
        &self,
        ruby: &Ruby,
        f: impl FnOnce(&Agent) -> Result<T, CoreError>,
    ) -> Result<T, Error> {
        let result = {
            let agent = self.agent.lock().unwrap_or_else(|p| p.into_inner());
            match agent.as_ref().map(ForkLocal::get) {
                Some(Some(agent)) => f(agent),
                Some(None) => Err(closed(
                    "this agent belongs to the parent process; start a new one after fork",
                )),
                None => Err(closed("the agent was closed")),
            }
        };
        result.or_raise(ruby)
    }

    /// Runs an async operation that needs the agent by value, without the GVL.
    fn with_agent_async<F, Fut>(&self, ruby: &Ruby, f: F) -> Result<(), Error>
    where
        F: FnOnce(Agent) -> Fut,
        Fut: std::future::Future<Output = (Agent, Result<(), CoreError>)> + Send + 'static,
    {
        let taken = self.agent.lock().unwrap_or_else(|p| p.into_inner()).take();
        let agent = match taken.map(ForkLocal::into_inner) {
            Some(Some(agent)) => agent,
            Some(None) => {
                return Err(closed(
                    "this agent belongs to the parent process; start a new one after fork",
                ))
                .or_raise(ruby)
            }
            None => return Err(closed("the agent was closed")).or_raise(ruby),
        };
        let (agent, result) = block_on(ruby, f(agent))?;
        *self.agent.lock().unwrap_or_else(|p| p.into_inner()) = Some(ForkLocal::new(agent));
        result.or_raise(ruby)
    }

    fn socket_path(&self) -> String {
        self.socket_path.clone()
    }

    fn bundle_der(ruby: &Ruby, rb_self: &Self, trust_domain: String) -> Result<RString, Error> {
        guard(ruby, || {
            rb_self
                .with_agent(ruby, |a| a.bundle_der_for(&trust_domain))
                .map(|der| binary(ruby, &der))
        })
    }

    fn jwks(ruby: &Ruby, rb_self: &Self, trust_domain: String) -> Result<String, Error> {
        guard(ruby, || {
            rb_self.with_agent(ruby, |a| a.jwks_for(&trust_domain))
        })
    }

    fn peer_pids(ruby: &Ruby, rb_self: &Self) -> Result<Vec<i32>, Error> {
        guard(ruby, || rb_self.with_agent(ruby, |a| Ok(a.peer_pids())))
    }

    fn calls(ruby: &Ruby, rb_self: &Self) -> Result<magnus::RHash, Error> {
        guard(ruby, || {
            let calls = rb_self.with_agent(ruby, |a| Ok(a.calls()))?;
            let hash = ruby.hash_new();
            for (method, count) in calls {
                hash.aset(method, count)?;
            }
            Ok(hash)
        })
    }

    fn add_entry(ruby: &Ruby, rb_self: &Self, entry_json: String) -> Result<String, Error> {
        guard(ruby, || {
            rb_self.with_agent(ruby, |a| {
                a.add_entry(&parse_json::<EntryConfig>("entry", &entry_json)?)
            })
        })
    }

    fn remove_entry(ruby: &Ruby, rb_self: &Self, id: String) -> Result<usize, Error> {
        guard(ruby, || {
            rb_self.with_agent(ruby, |a| Ok(a.remove_entry(&id)))
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

    fn rotate(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        guard(ruby, || rb_self.with_agent(ruby, Agent::rotate))
    }

    fn rotate_ca(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        guard(ruby, || rb_self.with_agent(ruby, Agent::rotate_ca))
    }

    fn rotate_jwt_key(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        guard(ruby, || rb_self.with_agent(ruby, Agent::rotate_jwt_key))
    }

    fn drop_connections(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        guard(ruby, || {
            rb_self.with_agent(ruby, |a| {
                a.drop_connections();
                Ok(())
            })
        })
    }

    /// `[chain_der, key_der]`
    fn mint_x509_svid(
        ruby: &Ruby,
        rb_self: &Self,
        spiffe_id: String,
        ttl: f64,
    ) -> Result<(RString, RString), Error> {
        guard(ruby, || {
            let ttl = Duration::from_secs_f64(ttl.max(1.0));
            let (chain, key) = rb_self.with_agent(ruby, |a| a.mint_x509_svid(&spiffe_id, ttl))?;
            Ok((binary(ruby, &chain), binary(ruby, &key)))
        })
    }

    fn mint_jwt_svid(
        ruby: &Ruby,
        rb_self: &Self,
        spiffe_id: String,
        audience: Vec<String>,
        ttl: f64,
    ) -> Result<String, Error> {
        guard(ruby, || {
            // Negative: an already expired token, for tests of expiry.
            let ttl = ttl.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64;
            rb_self.with_agent(ruby, |a| a.mint_jwt_svid(&spiffe_id, &audience, ttl))
        })
    }

    /// Stops serving (the socket goes away); `restart` serves again.
    fn stop(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        guard(ruby, || {
            rb_self.with_agent_async(ruby, |mut agent| async move {
                agent.stop().await;
                (agent, Ok(()))
            })
        })
    }

    fn restart(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        guard(ruby, || {
            rb_self.with_agent_async(ruby, |mut agent| async move {
                let result = agent.restart().await;
                (agent, result)
            })
        })
    }

    /// Stops serving and releases everything. Idempotent.
    fn close(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
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
        let agent = self.agent.lock().unwrap_or_else(|p| p.into_inner());
        matches!(agent.as_ref().and_then(ForkLocal::get), Some(agent) if agent.is_serving())
    }
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let class = native.define_class("Agent", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("start", function!(NativeAgent::start, 1))?;
    class.define_method("socket_path", method!(NativeAgent::socket_path, 0))?;
    class.define_method("bundle_der", method!(NativeAgent::bundle_der, 1))?;
    class.define_method("jwks", method!(NativeAgent::jwks, 1))?;
    class.define_method("peer_pids", method!(NativeAgent::peer_pids, 0))?;
    class.define_method("calls", method!(NativeAgent::calls, 0))?;
    class.define_method("add_entry", method!(NativeAgent::add_entry, 1))?;
    class.define_method("remove_entry", method!(NativeAgent::remove_entry, 1))?;
    class.define_method("fault=", method!(NativeAgent::set_fault, 1))?;
    class.define_method("rotate", method!(NativeAgent::rotate, 0))?;
    class.define_method("rotate_ca", method!(NativeAgent::rotate_ca, 0))?;
    class.define_method("rotate_jwt_key", method!(NativeAgent::rotate_jwt_key, 0))?;
    class.define_method(
        "drop_connections",
        method!(NativeAgent::drop_connections, 0),
    )?;
    class.define_method("mint_x509_svid", method!(NativeAgent::mint_x509_svid, 2))?;
    class.define_method("mint_jwt_svid", method!(NativeAgent::mint_jwt_svid, 3))?;
    class.define_method("stop", method!(NativeAgent::stop, 0))?;
    class.define_method("restart", method!(NativeAgent::restart, 0))?;
    class.define_method("close", method!(NativeAgent::close, 0))?;
    class.define_method("running?", method!(NativeAgent::running, 0))?;
    Ok(())
}
