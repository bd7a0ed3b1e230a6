/* crc32c.h -- CRC-32C (Castagnoli), the checksum on every log record and
 * every SST and manifest block.  Uses the SSE4.2 instruction when present. */
#ifndef KV_CRC32C_H
#define KV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32C over buf; start with crc = 0. */
uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t n);
/* The table-driven path, whatever the CPU (tests compare the two). */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t n);
static inline uint32_t crc32c(const void *buf, size_t n) { return crc32c_extend(0, buf, n); }

#endif
