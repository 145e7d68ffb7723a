//! A per-call arena in front of a WebAssembly plugin's allocator.
//!
//! A plugin call (a rules evaluation, say) allocates hundreds of short-lived
//! strings and vectors and frees them all by the time the host has read the
//! result. A general-purpose allocator pays for bins, headers and coalescing
//! on every one of them. [`CallArena`] instead hands out memory from a chunk by
//! bumping a pointer and only counts frees; when the chunk's last live
//! allocation is freed, the whole chunk is empty again and the next call starts
//! at its beginning.
//!
//! Memory is never reused while any allocation in it is live, so the arena is
//! safe whatever the plugin does. If something allocated during a call lives
//! on (a cache, say), its chunk stays pinned and the arena moves to another
//! chunk; when [`MAX_CHUNKS`] are pinned, allocations go to the inner
//! allocator. Large allocations always go to the inner allocator, and so does
//! everything while the arena is off (the default), so a plugin turns it on
//! once its long-lived state (configuration, parsed rule set) is built.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// Bytes in one arena chunk.
pub const CHUNK_BYTES: usize = 256 << 10;
/// Chunks the arena may hold at once (pinned ones included).
pub const MAX_CHUNKS: usize = 8;
/// Allocations larger than this go straight to the inner allocator.
pub const LARGEST_IN_ARENA: usize = 16 << 10;

/// One chunk: `[start, end)`, the next free byte, and how many allocations in it are live.
/// An unused slot has `end == 0`.
#[derive(Clone, Copy)]
struct Chunk {
    start: usize,
    end: usize,
    next: usize,
    live: usize,
}

impl Chunk {
    const UNUSED: Chunk = Chunk {
        start: 0,
        end: 0,
        next: 0,
        live: 0,
    };

    #[inline(always)]
    fn holds(&self, p: usize) -> bool {
        self.start <= p && p < self.end
    }

    /// Bumps out `layout` if it fits.
    #[inline(always)]
    fn bump(&mut self, layout: Layout) -> Option<*mut u8> {
        let at = self.next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
        if at > self.end || layout.size() > self.end - at {
            return None;
        }
        self.next = at + layout.size();
        self.live += 1;
        Some(at as *mut u8)
    }

    /// Releases one allocation; returns whether the chunk is now empty (and rewound).
    #[inline(always)]
    fn release(&mut self, p: usize, size: usize) -> bool {
        self.live -= 1;
        if self.live == 0 {
            self.next = self.start;
            true
        } else {
            // The newest allocation can be taken back at once (a Vec's growth, a temporary).
            if p + size == self.next {
                self.next = p;
            }
            false
        }
    }
}

/// Counters that show whether the arena is doing its job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Allocations served from a chunk.
    pub served: u64,
    /// Times a chunk emptied and started again from its beginning.
    pub resets: u64,
    /// Small allocations passed to the inner allocator because every chunk was pinned.
    pub overflowed: u64,
    /// Chunks taken from the inner allocator so far.
    pub chunks: usize,
}

struct State {
    on: bool,
    chunks: [Chunk; MAX_CHUNKS],
    current: usize,
    stats: ArenaStats,
}

/// A bump arena with live counts, in front of `A`.
///
/// It keeps its state in an [`UnsafeCell`] without a lock: it is meant for a
/// single-threaded WebAssembly instance, where it can be the global allocator.
pub struct CallArena<A> {
    inner: A,
    state: UnsafeCell<State>,
}

// SAFETY: WebAssembly components run one thread per instance (wasm32-wasip2 has
// no threads), so the state is never touched concurrently. Elsewhere the arena
// is not `Sync`, so it cannot be shared between threads.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for CallArena<A> {}

impl<A: GlobalAlloc> CallArena<A> {
    /// An arena, off, in front of `inner`.
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            state: UnsafeCell::new(State {
                on: false,
                chunks: [Chunk::UNUSED; MAX_CHUNKS],
                current: 0,
                stats: ArenaStats {
                    served: 0,
                    resets: 0,
                    overflowed: 0,
                    chunks: 0,
                },
            }),
        }
    }

    /// The state. Callers hold the returned reference only within one method
    /// and never across a call into the inner allocator or another method.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    fn state(&self) -> &mut State {
        // SAFETY: single-threaded (see the `Sync` impl), and per the rule above
        // no two references to the state are live at once.
        unsafe { &mut *self.state.get() }
    }

    /// Turns the arena on or off for new allocations. Frees are handled either way.
    pub fn set_enabled(&self, on: bool) {
        self.state().on = on;
    }

    /// Whether new small allocations come from the arena.
    pub fn enabled(&self) -> bool {
        self.state().on
    }

    /// The arena's counters.
    pub fn stats(&self) -> ArenaStats {
        self.state().stats
    }

    /// The current chunk is full: moves to an empty chunk, or a new one, and serves
    /// `layout` there; null when every chunk is pinned or memory is out.
    #[cold]
    #[inline(never)]
    fn alloc_in_another_chunk(&self, layout: Layout) -> *mut u8 {
        let slot = {
            let s = self.state();
            let empty = s.chunks.iter().position(|c| c.end != 0 && c.live == 0);
            match empty.or_else(|| s.chunks.iter().position(|c| c.end == 0)) {
                Some(i) => i,
                None => {
                    s.stats.overflowed += 1;
                    return ptr::null_mut();
                }
            }
        };
        if self.state().chunks[slot].end == 0 {
            // SAFETY: a valid, non-zero-size layout.
            let base = unsafe {
                self.inner
                    .alloc(Layout::from_size_align_unchecked(CHUNK_BYTES, 16))
            };
            if base.is_null() {
                return ptr::null_mut();
            }
            let start = base as usize;
            let s = self.state();
            s.chunks[slot] = Chunk {
                start,
                end: start + CHUNK_BYTES,
                next: start,
                live: 0,
            };
            s.stats.chunks += 1;
        }
        let s = self.state();
        s.current = slot;
        match s.chunks[slot].bump(layout) {
            Some(p) => {
                s.stats.served += 1;
                p
            }
            None => ptr::null_mut(),
        }
    }

    /// Frees `p` from whichever chunk holds it, or from the inner allocator.
    #[cold]
    #[inline(never)]
    fn dealloc_elsewhere(&self, p: *mut u8, layout: Layout) {
        let s = self.state();
        match s.chunks.iter_mut().find(|c| c.holds(p as usize)) {
            Some(c) => {
                if c.release(p as usize, layout.size()) {
                    s.stats.resets += 1;
                }
            }
            // SAFETY: `p` came from the inner allocator with this layout.
            None => unsafe { self.inner.dealloc(p, layout) },
        }
    }

    /// The index of the chunk holding `p`, if any.
    #[inline(always)]
    fn chunk_of(&self, p: *mut u8) -> Option<usize> {
        let s = self.state();
        if s.chunks[s.current].holds(p as usize) {
            return Some(s.current);
        }
        s.chunks.iter().position(|c| c.holds(p as usize))
    }
}

// SAFETY: every pointer handed out is either from the inner allocator (and given
// back to it) or a fresh, aligned, in-bounds range of a chunk that no live
// allocation overlaps: a chunk is rewound only when its live count is zero, or
// by the size of its newest allocation when that one is freed.
//
// The methods are not inlined: every drop site would carry a copy (twice the
// code in a plugin's exports), for no measurable gain.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CallArena<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let s = self.state();
        if s.on && layout.size() != 0 && layout.size() <= LARGEST_IN_ARENA {
            let current = s.current;
            if let Some(p) = s.chunks[current].bump(layout) {
                s.stats.served += 1;
                return p;
            }
            let p = self.alloc_in_another_chunk(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: the caller's layout contract is passed on.
        unsafe { self.inner.alloc(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let s = self.state();
        let current = s.current;
        let c = &mut s.chunks[current];
        if c.holds(p as usize) {
            if c.release(p as usize, layout.size()) {
                s.stats.resets += 1;
            }
            return;
        }
        self.dealloc_elsewhere(p, layout);
    }

    #[inline(never)]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Some(i) = self.chunk_of(p) {
            let c = &mut self.state().chunks[i];
            let at = p as usize;
            // The newest allocation grows or shrinks in place while it fits.
            if at + layout.size() == c.next && new_size <= c.end - at {
                c.next = at + new_size;
                return p;
            }
            if new_size <= layout.size() {
                return p;
            }
            // SAFETY: the new layout keeps the old alignment and a valid size.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: as for `alloc`.
            let fresh = unsafe { self.alloc(new_layout) };
            if !fresh.is_null() {
                // SAFETY: both ranges are valid for the old size and do not overlap.
                unsafe {
                    ptr::copy_nonoverlapping(p, fresh, layout.size());
                    self.dealloc(p, layout);
                }
            }
            return fresh;
        }
        // SAFETY: `p` came from the inner allocator with this layout.
        unsafe { self.inner.realloc(p, layout, new_size) }
    }
}

#[cfg(test)]
mod tests;
