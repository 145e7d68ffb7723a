//! Where a plugin's heap comes from: first a static region that is part of the
//! module's initial linear memory, then `memory.grow` in steps of at least
//! [`GROW_STEP`].
//!
//! Why: a fresh instance in the host's pooling allocator starts with exactly its
//! initial memory accessible. Each `memory.grow` beyond it is an `mprotect` in
//! the host, with a TLB shootdown on a multi-core machine, and the slot is
//! shrunk back on the next instantiation. A heap that starts inside the initial
//! memory makes a typical call grow nothing at all. The static region is
//! zero-initialised (`.bss`), so it adds nothing to the component's size, and
//! pages of it that are never touched cost nothing.

use core::alloc::Layout;
use talc::{OomHandler, Span, Talc};

/// Bytes of heap inside the initial linear memory.
pub const STATIC_HEAP: usize = 1 << 20;
/// The least a `memory.grow` asks for once the static heap is used up.
pub const GROW_STEP: usize = 1 << 20;
const WASM_PAGE: usize = 64 << 10;

#[repr(align(64))]
struct Region([u8; STATIC_HEAP]);

/// The static heap. Only the OOM handler below takes its address, once.
static mut INITIAL: Region = Region([0; STATIC_HEAP]);

/// talc's out-of-memory handler: claims the static heap, then grows memory.
pub struct Handler {
    claimed_initial: bool,
    grown: Span,
}

impl Handler {
    /// A handler that has claimed nothing yet.
    pub const fn new() -> Self {
        Self {
            claimed_initial: false,
            grown: Span::empty(),
        }
    }
}

impl OomHandler for Handler {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        if !talc.oom_handler.claimed_initial {
            talc.oom_handler.claimed_initial = true;
            // SAFETY: the region is ours alone (this is the only place that takes
            // its address, and it runs once), valid for reads and writes, and not
            // null.
            let span = Span::from_array(unsafe { &raw mut INITIAL.0 });
            // SAFETY: as above; talc keeps it for the instance's life.
            if unsafe { talc.claim(span) }.is_ok() {
                return Ok(());
            }
        }
        // Grow by at least GROW_STEP, and enough for this allocation with talc's overhead.
        let needed = layout.size().saturating_add(layout.align()).saturating_add(64);
        let mut pages = needed.max(GROW_STEP).div_ceil(WASM_PAGE);
        let old_pages = loop {
            if pages == 0 {
                return Err(());
            }
            let old = core::arch::wasm32::memory_grow::<0>(pages);
            if old != usize::MAX {
                break old;
            }
            // The limit is near: try for less.
            pages = pages.max(needed.div_ceil(WASM_PAGE)) / 2;
            if pages * WASM_PAGE < needed {
                return Err(());
            }
        };
        let base = (old_pages * WASM_PAGE) as *mut u8;
        let acme = base.wrapping_add(pages * WASM_PAGE);
        let grown = talc.oom_handler.grown;
        if let Some((prev_base, prev_acme)) = grown.get_base_acme() {
            if prev_acme == base {
                // SAFETY: the new pages follow the heap talc already holds.
                talc.oom_handler.grown = unsafe { talc.extend(grown, Span::new(prev_base, acme)) };
                return Ok(());
            }
        }
        // SAFETY: fresh pages from memory.grow, used by nothing else.
        match unsafe { talc.claim(Span::new(base, acme)) } {
            Ok(span) => {
                talc.oom_handler.grown = span;
                Ok(())
            }
            Err(()) => Err(()),
        }
    }
}

/// talc with this handler, without a lock (a component instance is single-threaded).
pub type Heap = talc::Talck<talc::locking::AssumeUnlockable, Handler>;

/// The heap for the global allocator.
///
/// # Safety
/// Only for single-threaded WebAssembly, and only once (as the global allocator).
pub const unsafe fn global() -> Heap {
    Talc::new(Handler::new()).lock()
}
