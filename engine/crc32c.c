/* crc32c.c -- CRC-32C (Castagnoli) for every checksum the engine writes.
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once),
 * three streams at a time over long buffers, otherwise a byte-at-a-time
 * table. */
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
static uint32_t crc_hw_serial(uint32_t crc, const unsigned char *p, size_t n)
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

/* The instruction takes 3 cycles and can start every cycle: three
 * independent streams over three consecutive stretches of STRETCH bytes
 * go three times as fast as one.  The register update is linear, so
 * crc(c, A B) = shift(crc(c, A), |B|) ^ crc(0, B), where shift(x, n) is x
 * run over n zero bytes; for n = STRETCH it is four table lookups
 * (shift_tab[k][b] = shift(b << 8k, STRETCH), made once at start). */
#define STRETCH 256
static uint32_t shift_tab[4][256];

__attribute__((target("sse4.2")))
static void init_shift(void)
{
    static const unsigned char zeros[STRETCH];
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            shift_tab[k][b] = crc_hw_serial(b << (8 * k), zeros, STRETCH);
}

static uint32_t shift_stretch(uint32_t c)
{
    return shift_tab[0][c & 0xff] ^ shift_tab[1][(c >> 8) & 0xff] ^ shift_tab[2][(c >> 16) & 0xff]
           ^ shift_tab[3][c >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n >= 3 * STRETCH) {
        uint64_t a = crc, b = 0, c = 0;
        for (size_t i = 0; i < STRETCH; i += 8) {
            uint64_t x, y, z;
            memcpy(&x, p + i, 8);
            memcpy(&y, p + STRETCH + i, 8);
            memcpy(&z, p + 2 * STRETCH + i, 8);
            a = __builtin_ia32_crc32di(a, x);
            b = __builtin_ia32_crc32di(b, y);
            c = __builtin_ia32_crc32di(c, z);
        }
        crc = shift_stretch(shift_stretch((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
        p += 3 * STRETCH;
        n -= 3 * STRETCH;
    }
    return crc_hw_serial(crc, p, n);
}
#endif

static void detect(void)
{
    init_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (have_hw)
        init_shift();
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
