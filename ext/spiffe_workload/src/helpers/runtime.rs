//! One tokio runtime per process, rebuilt after `fork`.
//!
//! A forked child inherits the parent's runtime data but not its thread, and
//! shares its epoll descriptor: touching it could wake or hang the parent. So
//! a `pthread_atfork` child handler bumps a generation counter, and the first
//! use in the child leaks (never drops) the parent's runtime and builds a new
//! one. Objects bound to a generation ([`ForkLocal`]) do the same.

use spiffe_core::Error;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::runtime::Handle;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

pub fn install_fork_hook() {
    // SAFETY: registering a handler that only bumps an atomic is
    // async-signal-safe, as a fork handler must be.
    unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    }
}

/// Bumped in every forked child.
pub fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::SeqCst)
}

struct Slot {
    generation: u64,
    handle: Handle,
}

static RUNTIME: Mutex<Option<Slot>> = Mutex::new(None);

/// The handle of this process's runtime, built on first use. A current-thread
/// runtime driven by one background thread: the calls are short and mostly
/// wait on a local socket, and on 2 cores it beat a multi-thread scheduler.
pub fn handle() -> Result<Handle, Error> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    let generation = generation();
    if let Some(current) = slot.as_ref().filter(|s| s.generation == generation) {
        return Ok(current.handle.clone());
    }
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the tokio runtime: {e}")))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("spiffe-runtime".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| Error::internal(format!("cannot start the runtime thread: {e}")))?;
    *slot = Some(Slot {
        generation,
        handle: handle.clone(),
    });
    Ok(handle)
}

/// A value tied to the process (fork generation) that created it: dropped
/// normally there, leaked in a forked child where its runtime is gone.
pub struct ForkLocal<T> {
    generation: u64,
    value: ManuallyDrop<T>,
}

impl<T> ForkLocal<T> {
    pub fn new(value: T) -> Self {
        Self {
            generation: generation(),
            value: ManuallyDrop::new(value),
        }
    }

    /// The value, if this process created it.
    pub fn get(&self) -> Option<&T> {
        (self.generation == generation()).then_some(&*self.value)
    }

    /// Takes the value out if this process created it; leaks it otherwise.
    pub fn into_inner(self) -> Option<T> {
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the value is taken exactly once.
        (me.generation == generation()).then(|| unsafe { ManuallyDrop::take(&mut me.value) })
    }
}

impl<T> Drop for ForkLocal<T> {
    fn drop(&mut self) {
        if self.generation == generation() {
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}
