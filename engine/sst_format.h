/* sst_format.h -- constants of the SST file layout shared by the writer
 * and the reader (docs/FORMAT.md, "SST files"). */
#ifndef KV_SST_FORMAT_H
#define KV_SST_FORMAT_H

#define SST_MAGIC "KVLSMSST"
#define SST_MAGIC_U64 0x5453534d534c564bULL  /* "KVLSMSST" little-endian */
#define SST_VERSION 1
#define SST_HEADER 32     /* magic 8, version 4, flags 4, entries 8, reserved 4, crc 4 */
#define SST_FOOTER 60     /* index off 8, len 4, bloom off 8, len 4, entries 8,
                             min_seq 8, max_seq 8, magic 8, crc 4 */
/* Header flags: data blocks carry a codec tag (see compress.h). */
#define SST_FLAG_TAGGED 1u
#define SST_TRAILER 4     /* every block ends with the CRC-32C of its body */
/* An entry's fixed part at its smallest: five one-byte varints/fields. */
#define SST_MIN_ENTRY 5

#endif
