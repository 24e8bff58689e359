/* edgec firmware harness: start-up, semihosting I/O, instruction clock, stack watermark.
 *
 * The harness wraps a generated model (edgec_model.h / edgec_model.c) into a bare-metal
 * firmware that QEMU runs with semihosting. Nothing here is board specific beyond the
 * Armv7-M system registers (SCB, SysTick), which every Cortex-M3/M4/M7 has.
 */
#ifndef EDGEC_HARNESS_H
#define EDGEC_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* SysTick reload: the counter wraps every EDGEC_SYSTICK_RELOAD + 1 ticks; the SysTick
 * interrupt counts the wraps so the clock is 64-bit. Tests build with a small reload to
 * exercise the wrap path. Must fit in 24 bits. */
#ifndef EDGEC_SYSTICK_RELOAD
#define EDGEC_SYSTICK_RELOAD 0xFFFFFFu
#endif

/* Word painted over the free stack at boot and before each inference. */
#define EDGEC_STACK_PAINT 0xA5A5A5A5u

/* Exit codes seen by the host (semihosting SYS_EXIT_EXTENDED). */
enum edgec_exit {
    EDGEC_EXIT_OK = 0,
    EDGEC_EXIT_MODEL_ERROR = 1, /* edgec_model_run returned non-zero */
    EDGEC_EXIT_IO_ERROR = 2,    /* a host file could not be opened, read or written */
    EDGEC_EXIT_FAULT = 3        /* HardFault / MemManage / BusFault / UsageFault / NMI */
};

/* --- clock (startup.c) --- */
void edgec_clock_init(void);
/* SysTick ticks since edgec_clock_init, monotonic across 24-bit wraps. */
uint64_t edgec_ticks(void);

/* --- stack watermark (startup.c) --- */
/* Paint the free stack below the caller's frame with EDGEC_STACK_PAINT. */
void edgec_stack_paint(void);
/* Bytes of stack ever used since the last paint: top of stack - lowest overwritten word. */
uint32_t edgec_stack_used(void);
/* Size of the stack region reserved by the linker script. */
uint32_t edgec_stack_reserved(void);

/* --- semihosting (semihost.c) --- */
/* open modes as in the Arm semihosting spec: 1 = "rb", 5 = "wb" */
int edgec_sh_open(const char *path, int mode);
int edgec_sh_close(int handle);
long edgec_sh_flen(int handle);
/* Both return the number of bytes transferred. */
size_t edgec_sh_read(int handle, void *buf, size_t len);
size_t edgec_sh_write(int handle, const void *buf, size_t len);
void edgec_sh_exit(int code) __attribute__((noreturn));

/* Console output, buffered by line: text, decimal numbers, newline flushes. */
void edgec_puts(const char *s);
void edgec_putu(uint64_t v);
void edgec_putnl(void);

#endif /* EDGEC_HARNESS_H */
