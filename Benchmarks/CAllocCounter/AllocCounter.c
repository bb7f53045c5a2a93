// Counts heap allocations by interposing the allocator entry points.
// Linked into the benchmark executable only; glibc's __libc_* functions do the work.
#include "CAllocCounter.h"
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__linux__) && defined(__GLIBC__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic unsigned long allocations;

static inline void count(void) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); }

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    count();
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

unsigned long c_alloc_counter_allocations(void) {
    return atomic_load_explicit(&allocations, memory_order_relaxed);
}
unsigned long c_alloc_counter_heap_bytes(void) { return (unsigned long)mallinfo2().uordblks; }
#else
unsigned long c_alloc_counter_allocations(void) { return 0; }
unsigned long c_alloc_counter_heap_bytes(void) { return 0; }
#endif
