/* coding.h -- little-endian fixed-width integers and LEB128 varints, the
 * building blocks of every on-disk format (docs/FORMAT.md). */
#ifndef KV_CODING_H
#define KV_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put_u32(char *p, uint32_t v)
{
    p[0] = (char)v; p[1] = (char)(v >> 8); p[2] = (char)(v >> 16); p[3] = (char)(v >> 24);
}
static inline uint32_t get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}
static inline void put_u64(char *p, uint64_t v)
{
    put_u32(p, (uint32_t)v); put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t get_u64(const char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

#define VARINT_MAX 10
/* Writes v at p; returns the byte after it. */
static inline char *put_varint(char *p, uint64_t v)
{
    unsigned char *u = (unsigned char *)p;
    while (v >= 0x80) { *u++ = (unsigned char)(v | 0x80); v >>= 7; }
    *u++ = (unsigned char)v;
    return (char *)u;
}
static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}
/* Reads a varint from [p, end); returns the byte after it, or NULL if it
 * runs past end or is longer than 10 bytes (damaged input). */
static inline const char *get_varint(const char *p, const char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
        uint64_t b = (unsigned char)*p++;
        r |= (b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = r; return p; }
    }
    return NULL;
}

#endif
