/* Cortex-M start-up for edgec firmware: vector table, Reset_Handler, fault handlers,
 * the SysTick instruction clock and the stack watermark.
 *
 * Deliberately not newlib's crt0: rdimon-crt0 asks the debugger for a heap/stack location
 * and moves the stack into emulator-only RAM, which would hide the board's real layout.
 * The linker script (targets/cortex_m.ld.j2) provides the symbols used below.
 */
#include <stdint.h>

#include "edgec_harness.h"

/* Linker-script symbols (addresses only). */
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_start[], __stack_end[];

int main(void);

/* Armv7-M system registers. */
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define MPU_CTRL (*(volatile uint32_t *)0xE000ED94u)
#define MPU_RNR (*(volatile uint32_t *)0xE000ED98u)
#define MPU_RBAR (*(volatile uint32_t *)0xE000ED9Cu)
#define MPU_RASR (*(volatile uint32_t *)0xE000EDA0u)
#define MPU_TYPE (*(volatile uint32_t *)0xE000ED90u)
#define CFSR_MMARVALID (1u << 7)
#define CFSR_MSTKERR (1u << 4)
/* Stack guard: up to 64 KB of no-access MPU region right below the stack (the linker
 * script puts the stack first in its region, so nothing of the program lives there). */
#define STACK_GUARD_MAX 0x10000u
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
/* CSR = ENABLE | TICKINT | CLKSOURCE(processor clock) */
#define SYST_CSR_RUN 7u

void Reset_Handler(void);
void SysTick_Handler(void);
void edgec_fault_handler(void);
void edgec_fault_report(void);
static uint32_t stack_guard_base;

typedef void (*edgec_vector)(void);

/* Only the 16 system vectors: the harness enables no peripheral interrupt. */
__attribute__((section(".vectors"), used)) const edgec_vector edgec_vector_table[16] = {
    (edgec_vector)(uintptr_t)__stack_end, /* initial SP: top of the reserved stack */
    Reset_Handler,
    edgec_fault_handler, /* NMI */
    edgec_fault_handler, /* HardFault */
    edgec_fault_handler, /* MemManage */
    edgec_fault_handler, /* BusFault */
    edgec_fault_handler, /* UsageFault */
    0, 0, 0, 0,
    edgec_fault_handler, /* SVCall */
    edgec_fault_handler, /* DebugMonitor */
    0,
    edgec_fault_handler, /* PendSV */
    SysTick_Handler,
};

/* Paints [__stack_start, sp) in assembly: in C the compiler may push registers below the sp
 * it read (GCC does for Cortex-M55's low-overhead loops, which need LR), and the loop would
 * then paint over its own return address. Only r0-r2 are used; nothing is pushed. */
__attribute__((naked)) void edgec_stack_paint(void)
{
    __asm__ volatile(
        "    ldr   r0, =__stack_start\n"
        "    mov   r1, sp\n"
        "    bic   r1, r1, #3\n"
        "    ldr   r2, =0xA5A5A5A5\n" /* EDGEC_STACK_PAINT */
        "1:  cmp   r0, r1\n"
        "    bhs   2f\n"
        "    str   r2, [r0], #4\n"
        "    b     1b\n"
        "2:  bx    lr\n"
        "    .ltorg\n");
}

uint32_t edgec_stack_used(void)
{
    const volatile uint32_t *p = __stack_start;
    while (p < __stack_end && *p == EDGEC_STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)__stack_end - (uintptr_t)p);
}

uint32_t edgec_stack_reserved(void)
{
    return (uint32_t)((uintptr_t)__stack_end - (uintptr_t)__stack_start);
}

/* MPU region 0 = no access over [stack start - guard, stack start): an overflowing stack
 * faults at once instead of running into whatever lies below (QEMU's MPS2 machines read
 * unmapped addresses as zero). Hard fault and NMI handlers run with the MPU off
 * (HFNMIENA = 0), so the fault report can still run. */
static void stack_guard_init(void)
{
    uint32_t start = (uint32_t)(uintptr_t)__stack_start;
    uint32_t size = STACK_GUARD_MAX;
    if (((MPU_TYPE >> 8) & 0xFFu) == 0u) {
        return; /* no MPU */
    }
    while (size > 32u && (start & (size - 1u)) != 0u) {
        size >>= 1; /* a region is aligned to its power-of-two size */
    }
    if ((start & (size - 1u)) != 0u || start < size) {
        return;
    }
    uint32_t log2 = 0u;
    while ((1u << log2) < size) {
        log2++;
    }
    stack_guard_base = start - size;
    MPU_RNR = 0u;
    MPU_RBAR = stack_guard_base;
    /* XN | AP = 000 (no access) | SIZE = log2 - 1 | ENABLE */
    MPU_RASR = (1u << 28) | ((log2 - 1u) << 1) | 1u;
    MPU_CTRL = (1u << 2) | 1u; /* PRIVDEFENA: default map elsewhere; ENABLE */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* FPU first (CP10, CP11 full access), before any code that may use VFP registers. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif

    volatile uint32_t *src = __data_load;
    volatile uint32_t *dst = __data_start;
    while (dst < __data_end) {
        *dst++ = *src++;
    }
    for (dst = __bss_start; dst < __bss_end; dst++) {
        *dst = 0u;
    }
    stack_guard_init();
    edgec_stack_paint();
    edgec_clock_init();
    edgec_sh_exit(main());
}

/* ---- instruction clock --------------------------------------------------------------
 * SysTick on the processor clock. Under QEMU -icount shift=S virtual time advances 2^S ns
 * per instruction and SysTick counts the machine's CPU clock (25 MHz on the MPS2 boards),
 * so one tick is a fixed number of instructions (5 at shift=3: 40 ns / 8 ns). main.c
 * measures the factor at boot against a loop of known length (calibrate()).
 */
static volatile uint32_t systick_wraps; /* zero crossings of the counter */

void SysTick_Handler(void)
{
    systick_wraps++;
}

void edgec_clock_init(void)
{
    SYST_CSR = 0u;
    SYST_RVR = EDGEC_SYSTICK_RELOAD;
    SYST_CVR = 0u;
    systick_wraps = 0u;
    SYST_CSR = SYST_CSR_RUN;
}

uint64_t edgec_ticks(void)
{
    const uint32_t period = EDGEC_SYSTICK_RELOAD + 1u;
    uint32_t w1, w2, cvr, pending;
    do {
        w1 = systick_wraps;
        cvr = SYST_CVR;
        pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
        w2 = systick_wraps;
    } while (w1 != w2);
    /* The counter runs period-1 ... 1, 0 and the interrupt fires on reaching 0, so a
     * period starts at 0: phase = ticks since the last zero crossing. */
    uint32_t phase = (cvr == 0u) ? 0u : period - cvr;
    /* Crossed zero but the interrupt has not been taken yet (phase is still small). */
    if (pending && phase < period / 2u) {
        w1++;
    }
    return (uint64_t)w1 * period + phase;
}

/* ---- faults ----------------------------------------------------------------------
 * The firmware is dying: move SP back to the top of the stack (it may point into the guard
 * after an overflow), then report and exit. */
__attribute__((naked)) void edgec_fault_handler(void)
{
    __asm__ volatile("ldr r0, =__stack_end\n\t"
                     "mov sp, r0\n\t"
                     "b edgec_fault_report\n\t"
                     ".ltorg");
}

void edgec_fault_report(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
    uint32_t cfsr = SCB_CFSR;
    uint32_t mmfar = SCB_MMFAR;
#else /* Armv6-M / v8-M baseline: no fault status registers */
    uint32_t cfsr = 0u;
    uint32_t mmfar = 0u;
#endif
    uint32_t start = (uint32_t)(uintptr_t)__stack_start;
    int overflow = (cfsr & CFSR_MSTKERR) != 0u ||
                   ((cfsr & CFSR_MMARVALID) != 0u && stack_guard_base != 0u &&
                    mmfar >= stack_guard_base && mmfar < start);
    edgec_puts("EDGEC fault exception ");
    edgec_putu(ipsr & 0x1FFu);
    edgec_puts(" cfsr ");
    edgec_putu(cfsr);
    edgec_puts(" stack-overflow ");
    edgec_putu((uint32_t)overflow);
    edgec_putnl();
    edgec_sh_exit(EDGEC_EXIT_FAULT);
}
