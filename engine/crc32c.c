/* crc32c.c -- CRC-32C (Castagnoli) for every checksum the engine writes.
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once),
 * otherwise a byte-at-a-time table. */
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include "crc32c.h"

static uint32_t table[256];
static int have_hw = -1;

static void init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        table[i] = c;
    }
}

static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

static void detect(void)
{
    init_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    have_hw = 0;
#endif
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&once, detect);
    crc = ~crc;
#if defined(__x86_64__)
    if (have_hw)
        return ~crc_hw(crc, buf, n);
#endif
    return ~crc_sw(crc, buf, n);
}

/* For tests: the portable path, whatever the CPU. */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&once, detect);
    return ~crc_sw(~crc, buf, n);
}
