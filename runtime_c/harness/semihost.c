/* Arm semihosting (BKPT 0xAB, Thumb) without newlib's stdio: no heap, no FILE buffers, so
 * the firmware's RAM is the model's arena, its static data and the stack, nothing else.
 * Host paths are relative to the emulator's working directory. */
#include <stdint.h>

#include "edgec_harness.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_FLEN 0x0C
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static int semihost_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static size_t cstrlen(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

int edgec_sh_open(const char *path, int mode)
{
    uint32_t block[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, (uint32_t)cstrlen(path)};
    return semihost_call(SYS_OPEN, block);
}

int edgec_sh_close(int handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    return semihost_call(SYS_CLOSE, block);
}

long edgec_sh_flen(int handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    return semihost_call(SYS_FLEN, block);
}

size_t edgec_sh_read(int handle, void *buf, size_t len)
{
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    /* returns the number of bytes NOT read */
    return len - (size_t)semihost_call(SYS_READ, block);
}

size_t edgec_sh_write(int handle, const void *buf, size_t len)
{
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    /* returns the number of bytes NOT written */
    return len - (size_t)semihost_call(SYS_WRITE, block);
}

void edgec_sh_exit(int code)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    for (;;) {
        semihost_call(SYS_EXIT_EXTENDED, block);
    }
}

/* ---- console: one SYS_WRITE0 per line ---- */
static char line[128];
static size_t line_len;

static void flush_line(void)
{
    line[line_len] = '\0';
    semihost_call(SYS_WRITE0, line);
    line_len = 0;
}

static void putc_buffered(char c)
{
    if (line_len == sizeof line - 1u) {
        flush_line();
    }
    line[line_len++] = c;
    if (c == '\n') {
        flush_line();
    }
}

void edgec_puts(const char *s)
{
    while (*s != '\0') {
        putc_buffered(*s++);
    }
}

void edgec_putu(uint64_t v)
{
    char digits[21];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0u) {
        putc_buffered(digits[--n]);
    }
}

void edgec_putnl(void)
{
    putc_buffered('\n');
}
