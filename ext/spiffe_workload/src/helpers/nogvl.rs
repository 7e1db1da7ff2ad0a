//! The one blocking helper: run a future on the runtime and wait for it
//! without the GVL, interruptibly.
//!
//! The future runs as a tokio task. The Ruby thread waits on a condition
//! variable inside `rb_thread_call_without_gvl2`; the unblock function only
//! flags the wait and wakes it. After the wait, with no Rust guard left
//! that matters, pending interrupts are checked: an exception
//! (`Thread#raise`, `Timeout`, `Interrupt`, `Thread#kill`) propagates and the
//! task is aborted; a handled signal resumes the same wait.

use super::errors::panic_error;
use super::runtime;
use magnus::{Error, Ruby};
use std::ffi::c_void;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a lone Ruby thread waits with the GVL before releasing it.
const SPIN: Duration = Duration::from_micros(250);

enum Outcome<T> {
    Done(T),
    Panicked,
}

struct Waiter<T> {
    state: Mutex<(Option<Outcome<T>>, bool)>,
    wake: Condvar,
    /// Set with the outcome, so a spinning caller can poll without the lock.
    done: AtomicBool,
}

impl<T> Waiter<T> {
    fn lock(&self) -> MutexGuard<'_, (Option<Outcome<T>>, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, outcome: Outcome<T>) {
        let mut state = self.lock();
        if state.0.is_none() {
            state.0 = Some(outcome);
        }
        self.done.store(true, Ordering::Release);
        self.wake.notify_all();
    }
}

/// Completes the waiter with `Panicked` if the task unwinds before finishing.
struct FinishOnDrop<T>(Arc<Waiter<T>>);

impl<T> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        self.0.finish(Outcome::Panicked);
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

unsafe extern "C" fn wait<T>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `Waiter` that `block_on` keeps alive across the call.
    let waiter = unsafe { &*(data as *const Waiter<T>) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut state = waiter.lock();
        while state.0.is_none() && !state.1 {
            state = waiter.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }));
    std::ptr::null_mut()
}

unsafe extern "C" fn unblock<T>(data: *mut c_void) {
    // SAFETY: as in `wait`; Ruby calls this while `wait` may be running.
    let waiter = unsafe { &*(data as *const Waiter<T>) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        waiter.lock().1 = true;
        waiter.wake.notify_all();
    }));
}

/// Runs `future` on the runtime and returns its output, waiting without the
/// GVL. Other Ruby threads run meanwhile; interrupts end the wait.
pub fn block_on<T, F>(ruby: &Ruby, future: F) -> Result<T, Error>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime::handle().map_err(|e| super::errors::to_ruby(ruby, e))?;
    let waiter = Arc::new(Waiter {
        state: Mutex::new((None, false)),
        wake: Condvar::new(),
        done: AtomicBool::new(false),
    });
    let finish = FinishOnDrop(waiter.clone());
    let task = handle.spawn(async move {
        let output = future.await;
        finish.0.finish(Outcome::Done(output));
    });
    let _abort = AbortOnDrop(task.abort_handle());
    // A lone Ruby thread first waits a moment with the GVL: most calls
    // answer within it, and never entering the blocking region saves
    // Ruby's own wake-ups around it (more than the call itself on a small
    // machine). With other threads around, the GVL is released at once.
    // SAFETY: rb_thread_alone only reads the VM's thread count.
    if unsafe { rb_sys::rb_thread_alone() } != 0 {
        let deadline = Instant::now() + SPIN;
        while !waiter.done.load(Ordering::Acquire) && Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }
    let data = Arc::as_ptr(&waiter) as *mut c_void;
    loop {
        if !waiter.done.load(Ordering::Acquire) {
            // SAFETY: `wait` and `unblock` only touch the waiter behind `data`,
            // which outlives the call; neither calls into Ruby.
            unsafe {
                rb_sys::rb_thread_call_without_gvl2(
                    Some(wait::<T>),
                    data,
                    Some(unblock::<T>),
                    data,
                );
            }
        }
        let outcome = {
            let mut state = waiter.lock();
            state.1 = false;
            state.0.take()
        };
        match outcome {
            Some(Outcome::Done(output)) => return Ok(output),
            Some(Outcome::Panicked) => return Err(panic_error(ruby, "a background task panicked")),
            None => ruby.thread_check_ints()?,
        }
    }
}
