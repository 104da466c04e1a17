//! What a `tracing` event would cost the shim per intercepted call if it sent its records
//! through `tracing`. Inside someone else's process it could only do so through a private
//! dispatcher set around each call (`dispatcher::with_default`): a global subscriber, or a
//! thread default left in place, would take over the host program's own `tracing` events.
//!
//! Prints nanoseconds per call for: an empty loop; an event with no dispatcher (the
//! disabled fast path); an event through a private dispatcher whose subscriber drops it;
//! the same with a subscriber that takes the event and reads its fields (the least a sink
//! that writes records must do). Figures only, nothing asserted; the README's "Cost"
//! section quotes them. Run: `cargo run --release -p acl-ipc-guard-cli --example tracing_cost`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{dispatcher, Dispatch, Event, Metadata, Subscriber};

/// A subscriber that wants every event and, with `visit`, reads each field.
struct Sink {
    visit: bool,
    seen: AtomicU64,
}

struct Fields(u64);

impl Visit for Fields {
    fn record_u64(&mut self, _: &Field, v: u64) {
        self.0 = self.0.wrapping_add(v);
    }
    fn record_i64(&mut self, _: &Field, v: i64) {
        self.0 = self.0.wrapping_add(v as u64);
    }
    fn record_str(&mut self, _: &Field, v: &str) {
        self.0 = self.0.wrapping_add(v.len() as u64);
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl Subscriber for Sink {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let n = if self.visit {
            let mut f = Fields(0);
            e.record(&mut f);
            f.0
        } else {
            1
        };
        self.seen.fetch_add(n, Ordering::Relaxed);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

const N: u64 = 2_000_000;

/// Nanoseconds per iteration of `f`, the best of 5 rounds.
fn per_call(mut f: impl FnMut(u64)) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for i in 0..N {
                f(black_box(i));
            }
            t.elapsed().as_nanos() as f64 / N as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// The fields a `call` record carries that are plain numbers and strings.
fn event(i: u64) {
    tracing::event!(
        tracing::Level::INFO,
        seq = i,
        pid = 4242_i64,
        func = "aclrtIpcMemGetExportKey",
        ret = 0_i64,
        dur_ns = 1200_u64
    );
}

fn main() {
    let empty = per_call(|i| {
        black_box(i);
    });
    let no_dispatcher = per_call(event);
    let dropping = Dispatch::new(Sink {
        visit: false,
        seen: AtomicU64::new(0),
    });
    let private = per_call(|i| dispatcher::with_default(&dropping, || event(i)));
    let reading = Dispatch::new(Sink {
        visit: true,
        seen: AtomicU64::new(0),
    });
    let visited = per_call(|i| dispatcher::with_default(&reading, || event(i)));
    println!("tracing cost per intercepted call ({N} calls, best of 5 rounds):");
    println!("  empty loop:                                   {empty:6.1} ns");
    println!("  event!, no dispatcher (disabled):             {no_dispatcher:6.1} ns");
    println!("  with_default(private dispatcher) + event!:    {private:6.1} ns");
    println!("  the same, the subscriber reading its 5 fields: {visited:6.1} ns");
}
