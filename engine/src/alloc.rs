//! The broker's allocator: the system's, except that very large blocks are
//! reserved address space, committed page by page as they are written.
//!
//! Why: a decoder told "an array of N elements" reserves room for N before
//! it reads the first (`kafka-protocol` does, and `Vec::with_capacity` is
//! the norm). A forged N of two billion asks for hundreds of GiB; the
//! system allocator refuses anything past RAM and swap, and a refused
//! allocation aborts the process: one bad request would take the broker
//! down. Reserved with `MAP_NORESERVE`, such a block costs address space
//! only (there are 128 TiB of it) until written, and the decoder fails on
//! the missing bytes long before it writes much. Memory actually used stays
//! bounded by what was read, as with any allocation.
//!
//! Blocks under [`RESERVE_BYTES_MIN`] are the system allocator's, untouched.
//! Under `vm.overcommit_memory=2` the kernel ignores `MAP_NORESERVE` and a
//! huge block is refused, as without this allocator.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this many bytes are reserved mappings.
pub const RESERVE_BYTES_MIN: usize = 1 << 30;

/// Page alignment of a mapping; larger alignments go to the system.
const PAGE_BYTES: usize = 4096;

/// See the module documentation. Install with
/// `#[global_allocator] static ALLOC: ReservingAllocator = ReservingAllocator;`.
pub struct ReservingAllocator;

fn reserved(layout: Layout) -> bool {
    layout.size() >= RESERVE_BYTES_MIN && layout.align() <= PAGE_BYTES
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping touches no existing memory.
    let pointer = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if pointer == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        pointer.cast()
    }
}

unsafe impl GlobalAlloc for ReservingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if reserved(layout) {
            // SAFETY: a fresh mapping of `layout.size()` bytes.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: forwarded as given.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if reserved(layout) {
            // Anonymous mappings read as zeros.
            // SAFETY: as in `alloc`.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: forwarded as given.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if reserved(layout) {
            // SAFETY: `pointer` is a mapping of `layout.size()` bytes made by
            // `map` (the same layout decides both ways).
            unsafe { libc::munmap(pointer.cast(), layout.size()) };
        } else {
            // SAFETY: forwarded as given.
            unsafe { System.dealloc(pointer, layout) }
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = match Layout::from_size_align(new_size, layout.align()) {
            Ok(new_layout) => new_layout,
            Err(_) => return std::ptr::null_mut(),
        };
        match (reserved(layout), reserved(new_layout)) {
            // SAFETY: forwarded as given.
            (false, false) => unsafe { System.realloc(pointer, layout, new_size) },
            (true, true) => {
                // SAFETY: `pointer` is a mapping of `layout.size()` bytes;
                // the kernel moves it if it must.
                let moved = unsafe {
                    libc::mremap(
                        pointer.cast(),
                        layout.size(),
                        new_size,
                        libc::MREMAP_MAYMOVE,
                    )
                };
                if moved == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    moved.cast()
                }
            }
            _ => {
                // Across the threshold: a new block, the bytes copied.
                // SAFETY: `new_layout` is valid; both blocks are live for the
                // copy of the smaller size.
                unsafe {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(pointer, new, layout.size().min(new_size));
                        self.dealloc(pointer, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_block_is_reserved_and_returned_small_ones_are_the_systems() {
        let policy = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
        if policy.trim() == "2" {
            eprintln!("skipped: vm.overcommit_memory=2 reserves nothing without committing it");
            return;
        }
        let allocator = ReservingAllocator;
        // Far more than this machine has: reserved, not committed.
        let huge = Layout::from_size_align(256 << 30, 8).unwrap();
        unsafe {
            let pointer = allocator.alloc(huge);
            assert!(!pointer.is_null());
            // Writing a little commits only those pages.
            pointer.write_bytes(7, 4096);
            assert_eq!(*pointer.add(4095), 7);
            let grown = allocator.realloc(pointer, huge, 300 << 30);
            assert!(!grown.is_null());
            assert_eq!(*grown.add(100), 7);
            let shrunk_layout = Layout::from_size_align(300 << 30, 8).unwrap();
            let small = allocator.realloc(grown, shrunk_layout, 64);
            assert!(!small.is_null());
            assert_eq!(*small.add(63), 7);
            allocator.dealloc(small, Layout::from_size_align(64, 8).unwrap());
        }
    }
}
