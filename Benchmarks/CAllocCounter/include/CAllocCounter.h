#ifndef C_ALLOC_COUNTER_H
#define C_ALLOC_COUNTER_H
/// Number of heap allocations (malloc, calloc, realloc, aligned) made by the process so far.
/// The counting wrappers replace the C library's allocator entry points for the
/// benchmark executable only.
unsigned long c_alloc_counter_allocations(void);
/// Bytes of heap in use (glibc mallinfo2().uordblks), 0 elsewhere.
unsigned long c_alloc_counter_heap_bytes(void);
#endif
