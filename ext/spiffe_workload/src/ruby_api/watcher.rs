//! `Spiffe::Native::Watcher`: a running watch whose updates Ruby pulls
//! (`next` waits without the GVL). Created by `Native::Client#watch`.

use crate::helpers::convert;
use crate::helpers::errors::{guard, to_ruby, IntoRuby};
use crate::helpers::nogvl::block_on;
use crate::helpers::runtime::ForkLocal;
use magnus::{method, prelude::*, Error, RArray, RModule, Ruby, Value};
use spiffe_core::watch::{Next, Payload, State, Watcher};
use spiffe_core::{Error as CoreError, ErrorKind};
use std::time::Duration;

#[magnus::wrap(class = "Spiffe::Native::Watcher", free_immediately, size)]
pub struct NativeWatcher {
    watcher: ForkLocal<Watcher>,
}

impl NativeWatcher {
    pub fn new(watcher: Watcher) -> Self {
        Self {
            watcher: ForkLocal::new(watcher),
        }
    }

    fn watcher(&self, ruby: &Ruby) -> Result<&Watcher, Error> {
        self.watcher
            .get()
            .ok_or_else(|| {
                CoreError::new(
                    ErrorKind::Closed,
                    "this watch belongs to the parent process",
                )
            })
            .or_raise(ruby)
    }

    fn payload(ruby: &Ruby, payload: &Payload) -> Value {
        match payload {
            Payload::X509Context(ctx) => convert::x509_context(ruby, ctx).as_value(),
            Payload::X509Bundles(bundles) => convert::x509_bundles(ruby, bundles).as_value(),
            Payload::JwtBundles(bundles) => convert::jwt_bundles(ruby, bundles).as_value(),
        }
    }

    fn exception(ruby: &Ruby, error: &Option<CoreError>) -> Value {
        match error {
            Some(error) => to_ruby(ruby, error.clone())
                .value()
                .unwrap_or_else(|| ruby.qnil().as_value()),
            None => ruby.qnil().as_value(),
        }
    }

    /// `[version, seq, payload, last_error, errors, terminal_error, connected, reconnects]`
    fn row(ruby: &Ruby, state: &State) -> RArray {
        let row = ruby.ary_new_capa(8);
        let _ = row.push(state.version);
        let _ = row.push(state.seq);
        let _ = row.push(state.payload.as_deref().map(|p| Self::payload(ruby, p)));
        let _ = row.push(Self::exception(ruby, &state.last_error));
        let _ = row.push(state.errors);
        let _ = row.push(Self::exception(ruby, &state.terminal));
        let _ = row.push(state.connected);
        let _ = row.push(state.reconnects);
        row
    }

    /// Waits (without the GVL) for a state newer than version `after` (new
    /// payload, error, reconnection, end), or `timeout` seconds; `nil` on timeout.
    fn next(
        ruby: &Ruby,
        rb_self: &Self,
        after: u64,
        timeout: Option<f64>,
    ) -> Result<Option<RArray>, Error> {
        guard(ruby, || {
            let timeout = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
            let wait = rb_self.watcher(ruby)?.next(after, timeout);
            match block_on(ruby, wait)? {
                Next::Update(state) => Ok(Some(Self::row(ruby, &state))),
                Next::TimedOut => Ok(None),
            }
        })
    }

    fn current(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        guard(ruby, || {
            Ok(Self::row(ruby, &rb_self.watcher(ruby)?.current()))
        })
    }

    fn close(&self) -> bool {
        if let Some(watcher) = self.watcher.get() {
            watcher.close();
        }
        true
    }
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let class = native.define_class("Watcher", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_method("next", method!(NativeWatcher::next, 2))?;
    class.define_method("current", method!(NativeWatcher::current, 0))?;
    class.define_method("close", method!(NativeWatcher::close, 0))?;
    Ok(())
}
