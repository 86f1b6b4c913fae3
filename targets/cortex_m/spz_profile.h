/* Per-layer profiling hook shared by generated networks and the benchmark harness.
 *
 * How it works:
 * 1. Generated `net_run` calls SPZ_PROFILE_MARK(i) before layer i and SPZ_PROFILE_MARK(0xFFFFFFFFu) at its end.
 * 2. Built with -DSPZ_PROFILE the macro calls spz_profile_mark(id), an empty noinline function defined by
 *    bench_harness.c; the simulator hooks its address, reads r0 and attributes the cycles between two marks to
 *    the earlier mark's id.  Without SPZ_PROFILE the macro expands to nothing (zero cost).
 */
#ifndef SPZ_PROFILE_H
#define SPZ_PROFILE_H

#include <stdint.h>

#define SPZ_PROFILE_END 0xFFFFFFFFu

void spz_profile_mark(uint32_t id);

#ifdef SPZ_PROFILE
#define SPZ_PROFILE_MARK(id) spz_profile_mark((uint32_t)(id))
#else
#define SPZ_PROFILE_MARK(id) ((void)0)
#endif

#endif /* SPZ_PROFILE_H */
