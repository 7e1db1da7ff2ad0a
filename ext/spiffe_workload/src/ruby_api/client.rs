//! `Spiffe::Native::Client`: a Workload API client. Positional arguments,
//! no defaults; `Spiffe::WorkloadAPIClient` is the public face.

use crate::helpers::convert;
use crate::helpers::errors::{guard, IntoRuby};
use crate::helpers::nogvl::block_on;
use crate::helpers::runtime::{self, ForkLocal};
use magnus::{function, method, prelude::*, Error, RArray, RHash, RModule, Ruby};
use spiffe_core::client::Client;
use spiffe_core::endpoint::Endpoint;
use spiffe_core::watch::{Backoff, Kind, Watcher};
use spiffe_core::{Error as CoreError, ErrorKind};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[magnus::wrap(class = "Spiffe::Native::Client", free_immediately, size)]
pub struct NativeClient {
    endpoint: Endpoint,
    timeout: Duration,
    /// The connection of the process that made it; rebuilt after fork so the
    /// agent attests the child, not the parent. `None` once closed.
    connection: Mutex<Option<Option<ForkLocal<Arc<Client>>>>>,
}

impl NativeClient {
    fn new(
        ruby: &Ruby,
        socket_path: Option<String>,
        env_value: Option<String>,
        timeout: f64,
    ) -> Result<Self, Error> {
        guard(ruby, || {
            let endpoint =
                Endpoint::resolve(socket_path.as_deref(), env_value.as_deref()).or_raise(ruby)?;
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(CoreError::config(format!(
                    "timeout must be a positive number of seconds (got {timeout})"
                )))
                .or_raise(ruby);
            }
            Ok(Self {
                endpoint,
                timeout: Duration::from_secs_f64(timeout),
                connection: Mutex::new(Some(None)),
            })
        })
    }

    /// This process's client, connecting lazily. Errors are built into Ruby
    /// exceptions only after the lock is released: creating one runs Ruby
    /// code, which may switch threads, and a thread blocked on this lock
    /// while holding the GVL would then deadlock the process.
    fn client(&self, ruby: &Ruby) -> Result<Arc<Client>, Error> {
        self.connect().or_raise(ruby)
    }

    fn connect(&self) -> Result<Arc<Client>, CoreError> {
        let mut connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = connection.as_mut() else {
            return Err(CoreError::new(
                ErrorKind::Closed,
                "the Workload API client was shut down; create a new one with Spiffe.workload_api_client",
            ));
        };
        if let Some(client) = slot.as_ref().and_then(ForkLocal::get) {
            return Ok(client.clone());
        }
        let handle = runtime::handle()?;
        let _context = handle.enter();
        let client = Arc::new(Client::new(self.endpoint.clone(), self.timeout)?);
        if let Some(inherited) = slot.replace(ForkLocal::new(client.clone())) {
            drop(inherited.into_inner());
        }
        Ok(client)
    }

    /// Runs one call on this process's client without the GVL.
    fn call<T, F, Fut>(&self, ruby: &Ruby, rpc: F) -> Result<T, Error>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, CoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let client = self.client(ruby)?;
        block_on(ruby, rpc(client))?.or_raise(ruby)
    }

    fn x509_context(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        guard(ruby, || {
            let ctx = rb_self.call(ruby, |c| async move { c.fetch_x509_context().await })?;
            Ok(convert::x509_context(ruby, &ctx))
        })
    }

    fn x509_bundles(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        guard(ruby, || {
            let bundles = rb_self.call(ruby, |c| async move { c.fetch_x509_bundles().await })?;
            Ok(convert::x509_bundles(ruby, &bundles))
        })
    }

    fn jwt_svids(
        ruby: &Ruby,
        rb_self: &Self,
        audience: Vec<String>,
        spiffe_id: Option<String>,
    ) -> Result<RArray, Error> {
        guard(ruby, || {
            let svids = rb_self.call(ruby, |c| async move {
                c.fetch_jwt_svids(audience, spiffe_id).await
            })?;
            Ok(ruby.ary_from_iter(svids.iter().map(|s| convert::jwt_svid(ruby, s))))
        })
    }

    fn jwt_bundles(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        guard(ruby, || {
            let bundles = rb_self.call(ruby, |c| async move { c.fetch_jwt_bundles().await })?;
            Ok(convert::jwt_bundles(ruby, &bundles))
        })
    }

    fn validate_jwt_svid(
        ruby: &Ruby,
        rb_self: &Self,
        token: String,
        audience: String,
    ) -> Result<RArray, Error> {
        guard(ruby, || {
            let svid = rb_self.call(ruby, |c| async move {
                c.validate_jwt_svid(token, audience).await
            })?;
            Ok(convert::jwt_svid(ruby, &svid))
        })
    }

    /// Starts a watch: `kind` is "x509_context", "x509_bundles" or
    /// "jwt_bundles"; the rest is the reconnect backoff.
    fn watch(
        ruby: &Ruby,
        rb_self: &Self,
        kind: String,
        initial: f64,
        max: f64,
        multiplier: f64,
        jitter: f64,
    ) -> Result<super::watcher::NativeWatcher, Error> {
        guard(ruby, || {
            let kind = match kind.as_str() {
                "x509_context" => Kind::X509Context,
                "x509_bundles" => Kind::X509Bundles,
                "jwt_bundles" => Kind::JwtBundles,
                other => {
                    return Err(CoreError::config(format!("unknown watch kind {other:?}")))
                        .or_raise(ruby)
                }
            };
            let positive =
                |v: f64| Duration::from_secs_f64(if v.is_finite() { v.max(0.001) } else { 30.0 });
            let backoff = Backoff {
                initial: positive(initial),
                max: positive(max),
                multiplier,
                jitter,
            };
            let client = rb_self.client(ruby)?;
            let handle = runtime::handle().or_raise(ruby)?;
            let _context = handle.enter();
            Ok(super::watcher::NativeWatcher::new(Watcher::start(
                client, kind, backoff,
            )))
        })
    }

    fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    fn timeout(&self) -> f64 {
        self.timeout.as_secs_f64()
    }

    /// Drops the connection; later calls raise `Spiffe::ClosedError`.
    fn close(&self) -> bool {
        let previous = self
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(Some(client)) = previous {
            drop(client.into_inner());
        }
        true
    }

    fn closed(&self) -> bool {
        self.connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let class = native.define_class("Client", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", function!(NativeClient::new, 3))?;
    class.define_method("x509_context", method!(NativeClient::x509_context, 0))?;
    class.define_method("x509_bundles", method!(NativeClient::x509_bundles, 0))?;
    class.define_method("jwt_svids", method!(NativeClient::jwt_svids, 2))?;
    class.define_method("jwt_bundles", method!(NativeClient::jwt_bundles, 0))?;
    class.define_method(
        "validate_jwt_svid",
        method!(NativeClient::validate_jwt_svid, 2),
    )?;
    class.define_method("watch", method!(NativeClient::watch, 5))?;
    class.define_method("endpoint", method!(NativeClient::endpoint, 0))?;
    class.define_method("timeout", method!(NativeClient::timeout, 0))?;
    class.define_method("close", method!(NativeClient::close, 0))?;
    class.define_method("closed?", method!(NativeClient::closed, 0))?;
    Ok(())
}
