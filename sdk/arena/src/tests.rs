extern crate std;

use super::*;
use std::alloc::System;
use std::vec::Vec;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("valid layout")
}

#[test]
fn off_by_default_everything_goes_to_the_inner_allocator() {
    let arena = CallArena::new(System);
    let l = layout(64, 8);
    unsafe {
        let p = arena.alloc(l);
        assert!(!p.is_null());
        arena.dealloc(p, l);
    }
    assert_eq!(arena.stats(), ArenaStats::default());
}

#[test]
fn a_call_that_frees_everything_leaves_the_chunk_empty_for_the_next() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    let l = layout(48, 8);
    let first_call: Vec<*mut u8> = (0..100).map(|_| unsafe { arena.alloc(l) }).collect();
    // Freed in allocation order, so only the last free can rewind the chunk.
    for &p in &first_call {
        unsafe { arena.dealloc(p, l) };
    }
    let second = unsafe { arena.alloc(l) };
    assert_eq!(
        second, first_call[0],
        "the next call starts at the chunk's beginning"
    );
    unsafe { arena.dealloc(second, l) };
    let s = arena.stats();
    assert_eq!((s.served, s.resets, s.chunks, s.overflowed), (101, 2, 1, 0));
}

#[test]
fn the_newest_allocation_grows_in_place_and_is_taken_back_when_freed() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    unsafe {
        let keep = arena.alloc(layout(8, 8));
        let p = arena.alloc(layout(16, 1));
        p.write_bytes(7, 16);
        let grown = arena.realloc(p, layout(16, 1), 1000);
        assert_eq!(grown, p, "the newest allocation grows where it is");
        assert_eq!(*grown.add(15), 7);
        arena.dealloc(grown, layout(1000, 1));
        let again = arena.alloc(layout(4, 1));
        assert_eq!(again, p, "freeing the newest allocation rewinds to it");
        arena.dealloc(again, layout(4, 1));
        arena.dealloc(keep, layout(8, 8));
    }
}

#[test]
fn an_older_allocation_moves_when_it_grows_and_keeps_its_bytes() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    unsafe {
        let old = arena.alloc(layout(32, 4));
        for i in 0..32 {
            *old.add(i) = i as u8;
        }
        let blocker = arena.alloc(layout(8, 4));
        let moved = arena.realloc(old, layout(32, 4), 64);
        assert_ne!(moved, old);
        assert!((0..32).all(|i| *moved.add(i) == i as u8));
        arena.dealloc(blocker, layout(8, 4));
        arena.dealloc(moved, layout(64, 4));
    }
    assert_eq!(arena.stats().resets, 1);
}

#[test]
fn a_long_lived_allocation_pins_its_chunk_and_the_arena_moves_on() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    let small = layout(1024, 8);
    unsafe {
        let pinned = arena.alloc(small);
        // Fill past one chunk: the arena needs a second chunk.
        let burst: Vec<*mut u8> = (0..(CHUNK_BYTES / 1024 + 8))
            .map(|_| arena.alloc(small))
            .collect();
        assert_eq!(arena.stats().chunks, 2);
        for &p in &burst {
            arena.dealloc(p, small);
        }
        // The second chunk emptied and is reused; the pinned one still holds its allocation.
        let next = arena.alloc(small);
        assert!(next != pinned);
        *pinned = 42;
        assert_eq!(*pinned, 42);
        arena.dealloc(next, small);
        arena.dealloc(pinned, small);
    }
    assert_eq!(arena.stats().overflowed, 0);
}

#[test]
fn when_every_chunk_is_pinned_small_allocations_go_to_the_inner_allocator() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    let l = layout(LARGEST_IN_ARENA, 16);
    let per_chunk = CHUNK_BYTES / LARGEST_IN_ARENA;
    unsafe {
        let all: Vec<*mut u8> = (0..MAX_CHUNKS * per_chunk + 3).map(|_| arena.alloc(l)).collect();
        assert!(all.iter().all(|p| !p.is_null()));
        let s = arena.stats();
        assert_eq!((s.chunks, s.overflowed), (MAX_CHUNKS, 3));
        for &p in &all {
            arena.dealloc(p, l);
        }
    }
    assert_eq!(arena.stats().resets, MAX_CHUNKS as u64);
}

#[test]
fn large_allocations_skip_the_arena() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    let big = layout(LARGEST_IN_ARENA + 1, 8);
    unsafe {
        let p = arena.alloc(big);
        assert!(!p.is_null());
        arena.dealloc(p, big);
    }
    assert_eq!(arena.stats().served, 0);
}

#[test]
fn allocations_keep_their_alignment() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    unsafe {
        let mut taken = Vec::new();
        for (i, align) in [1usize, 2, 4, 8, 16, 32, 64, 128, 4096]
            .into_iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            let l = layout(1 + i % 7, align);
            let p = arena.alloc(l);
            assert_eq!(p as usize % align, 0, "alignment {align}");
            taken.push((p, l));
        }
        for (p, l) in taken {
            arena.dealloc(p, l);
        }
    }
}

#[test]
fn frees_after_the_arena_is_turned_off_still_reach_the_right_place() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    let l = layout(100, 8);
    unsafe {
        let from_arena = arena.alloc(l);
        arena.set_enabled(false);
        let from_inner = arena.alloc(l);
        let moved = arena.realloc(from_arena, l, 200);
        arena.dealloc(from_inner, l);
        arena.dealloc(moved, layout(200, 8));
    }
    assert_eq!(arena.stats().served, 1);
}

/// Random allocations, growths and frees: every live allocation keeps its own bytes.
#[test]
fn live_allocations_never_overlap_under_random_use() {
    let arena = CallArena::new(System);
    arena.set_enabled(true);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
    for round in 0..20_000u32 {
        let r = next();
        let tag = (round % 251) as u8;
        unsafe {
            match r % 5 {
                0 | 1 => {
                    let l = layout(1 + (next() % 3000) as usize, 1 << (next() % 5));
                    let p = arena.alloc(l);
                    p.write_bytes(tag, l.size());
                    live.push((p, l, tag));
                }
                2 if !live.is_empty() => {
                    let i = (next() as usize) % live.len();
                    let (p, l, t) = live[i];
                    let new_size = 1 + (next() % 5000) as usize;
                    let q = arena.realloc(p, l, new_size);
                    let nl = layout(new_size, l.align());
                    assert!((0..l.size().min(new_size)).all(|k| *q.add(k) == t));
                    q.write_bytes(t, new_size);
                    live[i] = (q, nl, t);
                }
                _ if !live.is_empty() => {
                    let i = (next() as usize) % live.len();
                    let (p, l, t) = live.swap_remove(i);
                    assert!(
                        (0..l.size()).all(|k| *p.add(k) == t),
                        "bytes of a live allocation changed"
                    );
                    arena.dealloc(p, l);
                }
                _ => {}
            }
        }
    }
    for (p, l, t) in live {
        unsafe {
            assert!((0..l.size()).all(|k| *p.add(k) == t));
            arena.dealloc(p, l);
        }
    }
    assert!(arena.stats().resets > 0);
}
