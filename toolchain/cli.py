"""The `edgec` command. The only place that reads argv, prints, and chooses exit codes."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from .. import __version__
from .errors import EdgecError


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a shape like 1,3,32,32") from None
    if not dims or any(d <= 0 for d in dims):
        raise click.BadParameter(f"'{text}' is not a shape like 1,3,32,32")
    return dims


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgec")
@click.option("--debug", is_flag=True, help="Show Python tracebacks (for edgec developers).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Compile trained neural networks to bare-metal microcontroller firmware."""
    ctx.obj = {"debug": debug}


@cli.command("compile")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", "-t", default="stm32f746", show_default=True,
              help="Board name (see 'edgec targets') or a path to a board .toml.")
@click.option("--calib", type=click.Path(path_type=Path),
              help=".npy (leading sample axis) or .npz with calibration inputs.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("build/net"),
              show_default=True, help="Output directory (replaced as a whole on success).")
@click.option("--input-shape", help="Model input shape for TorchScript without --calib, e.g. 1,3,32,32.")
@click.option("--trust-pickle", is_flag=True,
              help="Allow a pickled nn.Module (.pt from torch.save): loading it runs its code.")
@click.option("--io", "io", type=click.Choice(["model", "int8"]), default="model", show_default=True,
              help="int8 .tflite or QDQ .onnx: 'int8' drops a QUANTIZE/DEQUANTIZE at the model's "
                   "boundary so the deployed model takes and gives int8.")
@click.option("--no-build", is_flag=True, help="Stop after emitting C (no cross toolchain needed).")
@click.option("--no-run", is_flag=True, help="Stop after building the firmware (no emulator).")
@click.option("--profile", is_flag=True, help="Count instructions per layer on the emulator.")
@click.option("--seed", default=0, show_default=True, help="Seed for generated data.")
@click.option("--optimize", type=click.Choice(["speed", "size"]), default="speed",
              show_default=True,
              help="speed: fastest kernel variants (int16 weights where flash allows), -O2; "
                   "size: compact variants (int8 weights), -Os.")
@click.option("--patch", default="auto", show_default=True,
              help="Patch-based execution of the first layers, stripe by stripe, when the "
                   "arena does not fit: auto (only then), min (the smallest arena, fit or "
                   "not), off, or N@layer (N stripes up to that layer, or into that fully "
                   "connected layer or mean, always).")
@click.option("--precision", type=click.Choice(["auto", "int8"]), default="auto",
              show_default=True,
              help="Float models: auto keeps at int16 the tensors whose int8 rounding measurably "
                   "costs fidelity (attention probabilities), int8 quantizes everything to "
                   "int8.")
@click.option("--fidelity", "fidelity_goal", type=click.FloatRange(0.0, 1.0, min_open=True),
              default=0.99, show_default=True,
              help="Goal of --precision auto: worst cosine between the float and the quantized "
                   "model's outputs over the calibration samples.")
def compile_cmd(model, target, calib, out_dir, input_shape, trust_pickle, io, no_build, no_run,
                profile, seed, optimize, patch, precision, fidelity_goal):
    """Compile MODEL (.pt TorchScript, .pt2 torch.export, .onnx, .tflite) for a target board."""
    from .options import CompileOptions
    from .pipeline import compile_model
    from .report import format_summary
    opts = CompileOptions(model=model, target=target, out_dir=out_dir, calib=calib,
                          input_shape=_shape(input_shape), trust_pickle=trust_pickle, io=io,
                          build=not no_build, run=not (no_build or no_run), profile=profile,
                          seed=seed, optimize=optimize, patch=patch, precision=precision,
                          fidelity_goal=fidelity_goal)
    result = compile_model(opts)
    for w in result.report.get("warnings", []):
        click.echo(f"edgec: warning: {w}", err=True)
    click.echo(format_summary(result.report))
    written = sorted(p.name + ("/" if p.is_dir() else "") for p in result.out_dir.iterdir()
                     if p.name in ("src", "report.json", "report.md", "report.html",
                                   "model.int8.onnx", "firmware.elf", "model.json",
                                   "golden.npz"))
    click.echo(f"wrote {result.out_dir}/: {', '.join(written)}")


@cli.command("run")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--input", "-i", "input_path", required=True, type=click.Path(path_type=Path),
              help=".npy input: one sample, or N samples along a leading axis; for a model "
                   "with several inputs, an .npz with one such array per input, keyed by "
                   "the input tensors' names.")
@click.option("--output", "-o", "output_path", type=click.Path(path_type=Path),
              help="Where to write the outputs: .npy (one output), or .npz (every output, "
                   "keyed by tensor name).")
@click.option("--profile", is_flag=True, help="Also print instructions per layer.")
@click.option("--timeout", default=600.0, show_default=True, help="Emulator time limit, seconds.")
def run_cmd(out_dir, input_path, output_path, profile, timeout):
    """Run a compiled model on the emulator with the inputs in INPUT."""
    from .runner import check_output_path, load_compiled, read_arrays, run_compiled, \
        save_outputs
    meta = load_compiled(out_dir)
    if output_path is not None:
        check_output_path(output_path, meta)
    x = read_arrays(input_path)
    res = run_compiled(out_dir, x, profile=profile, timeout_s=timeout)
    n = len(res.instructions)
    mean = sum(res.instructions) / max(n, 1)
    click.echo(f"{n} inference(s); instructions per inference: {mean:,.0f}"
               + (f" (min {min(res.instructions):,}, max {max(res.instructions):,})" if n > 1 else ""))
    if profile and res.layer_instructions:
        click.echo("layer  instructions (first inference)")
        for i, v in enumerate(res.layer_instructions[0]):
            click.echo(f"{i:5d}  {v:,}")
    if output_path is not None:
        written = save_outputs(output_path, res)
        shapes = ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in res.outputs.items()) \
            if written.suffix == ".npz" else f"{tuple(res.y.shape)} {res.y.dtype}"
        click.echo(f"wrote {written} {shapes}")


@cli.command("test")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--inputs", "-i", "inputs_path", required=True, type=click.Path(path_type=Path),
              help=".npz with x (N samples, source layout, float or int8) and optional labels "
                   "y; or an .npy of x.")
@click.option("--expect", type=click.Path(path_type=Path),
              help="Expected outputs (.npz: y_ref or its first array; or .npy). Default: "
                   "edgec's golden model on the same inputs.")
@click.option("--atol", type=float, help="Tolerance for float --expect values (default: one "
                                         "output quantization step; 0 for int8 values).")
@click.option("--budget-file", type=click.Path(path_type=Path),
              help="TOML of limits: arena_bytes, sram_bytes, stack_bytes, flash_bytes, "
                   "instructions, latency_ms, accuracy ...")
@click.option("--baseline", type=click.Path(path_type=Path),
              help="An earlier report.json (or 'edgec test --json' file) to compare with.")
@click.option("--max-regress", default="1%", show_default=True,
              help="With --baseline: how much worse a figure may get, e.g. 2% (instruction "
                   "counts move by a few ticks with the inputs: keep some margin).")
@click.option("--junit", type=click.Path(path_type=Path), help="Write JUnit XML here.")
@click.option("--summary-md", type=click.Path(path_type=Path),
              help="Write a Markdown summary (for a pull-request comment) here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write the figures and verdicts as JSON (a later run's --baseline).")
@click.option("--timeout", default=1800.0, show_default=True,
              help="Emulator time limit for the whole batch, seconds.")
def test_cmd(out_dir, inputs_path, expect, atol, budget_file, baseline, max_regress, junit,
             summary_md, json_path, timeout):
    """Run a compiled model on the emulator for every input and check it (exit 0 pass,
    1 a check failed, 2 bad usage or input)."""
    from . import citest
    x, y = citest.load_cases(inputs_path)
    result = citest.run_checks(
        out_dir, x, labels=y,
        expect=citest.load_expect(expect) if expect is not None else None,
        budgets=citest.load_budgets(budget_file) if budget_file is not None else None,
        baseline=citest.load_baseline(baseline) if baseline is not None else None,
        max_regress=citest.parse_margin(max_regress), atol=atol, timeout_s=timeout)
    click.echo(citest.format_table(result))
    citest.write_outputs(result, junit=junit, summary_md=summary_md, json_path=json_path)
    if not result.passed:
        from .errors import CheckError
        raise CheckError(citest.failure_line(result))


@cli.command("targets")
def targets_cmd():
    """List the shipped target boards and their budgets."""
    from .target import list_targets, load_target
    for name in list_targets():
        t = load_target(name)
        click.echo(f"{t.name:12s} {t.core:11s} {t.clock_hz / 1e6:5.0f} MHz  "
                   f"SRAM {t.sram_bytes // 1024:5d} KB  flash {t.flash_bytes // 1024:5d} KB  "
                   f"emulator {t.qemu_machine}")


@cli.command("report")
@click.argument("out_dir", type=click.Path(path_type=Path))
def report_cmd(out_dir):
    """Reprint the summary of a compiled model and regenerate OUT_DIR/report.html from
    its report.json."""
    import json

    from .report import format_summary
    from .report_html import render_html
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise EdgecError(f"'{out_dir}' has no report.json; create it with 'edgec compile'")
    try:
        rep = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgecError(f"'{path}' is not valid JSON ({e}); recreate it with "
                         f"'edgec compile'") from None
    try:
        summary, html = format_summary(rep), render_html(rep)
    except (KeyError, TypeError, AttributeError) as e:
        raise EdgecError(f"'{path}' lacks a field edgec needs ({type(e).__name__}: {e}); "
                         f"recreate it with 'edgec compile'") from None
    click.echo(summary)
    html_path = Path(out_dir) / "report.html"
    html_path.write_text(html, encoding="utf-8")  # rendered first: never half-written
    click.echo(f"wrote {html_path}")


@cli.command("nas")
@click.option("--target", "-t", default="stm32f746", show_default=True,
              help="Board name (see 'edgec targets') or a path to a board .toml.")
@click.option("--data", "train", required=True, type=click.Path(path_type=Path),
              help="Training data: .npz with x (N, C, H, W) float32 and y (N,) labels.")
@click.option("--val", required=True, type=click.Path(path_type=Path),
              help="Validation data, same format; only the final model is scored on it.")
@click.option("--budget-sram", default=None, help="SRAM budget, e.g. 64KB (default: the board's).")
@click.option("--budget-flash", default=None,
              help="Flash budget, e.g. 256KB (default: the board's).")
@click.option("--time", "time_limit", default="10m", show_default=True,
              help="Wall time for the whole run, e.g. 10m, 90s, 1h.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("nas"),
              show_default=True, help="Output directory.")
@click.option("--space", "space_file", default="cnn", show_default=True,
              help="Search space: cnn (MobileNetV2-style), vit (vision transformer: width, "
                   "depth, heads, MLP ratio, patch, resolution), or a .yaml/.json space file; "
                   "the built-in ones are sized for the data.")
@click.option("--seed", default=0, show_default=True, help="Seed: same seed, same search.")
@click.option("--resume", is_flag=True, help="Continue the search in OUT (candidates.jsonl).")
@click.option("--executor", type=click.Choice(["local", "ray", "inline"]), default="local",
              show_default=True, help="local: worker processes; ray: a Ray cluster "
                                      "(RAY_ADDRESS, else a local instance); inline: this process.")
@click.option("--workers", type=click.IntRange(min=1), help="Parallel tasks (default: CPUs).")
@click.option("--max-candidates", type=click.IntRange(min=1),
              help="Stop the search after measuring this many candidates.")
@click.option("--optimize", type=click.Choice(["speed", "size"]), default="speed",
              show_default=True, help="As for 'edgec compile': measure with these kernels.")
@click.option("--short-epochs", default=5, show_default=True, type=click.IntRange(min=0),
              help="Epochs of the short training that ranks candidates (0: proxy only).")
@click.option("--final-epochs", default=60, show_default=True, type=click.IntRange(min=1),
              help="Epochs of the finalists' training at most (the time limit may cut it).")
@click.option("--no-verify", is_flag=True,
              help="Do not build and emulate the winner with 'edgec compile'.")
def nas_cmd(target, train, val, budget_sram, budget_flash, time_limit, out_dir, space_file,
            seed, resume, executor, workers, max_candidates, optimize, short_epochs,
            final_epochs, no_verify):
    """Search a network that fits the board's SRAM and flash budgets (measured by edgec)."""
    import os

    from .nas import NasOptions, run_nas
    opts = NasOptions(train=train, val=val, out_dir=out_dir, target=target,
                      budget_sram=_size(budget_sram, "--budget-sram"),
                      budget_flash=_size(budget_flash, "--budget-flash"),
                      time_limit=_duration(time_limit), space_file=space_file, seed=seed,
                      resume=resume, executor=executor, workers=workers,
                      ray_address=os.environ.get("RAY_ADDRESS"), optimize=optimize,
                      max_candidates=max_candidates, short_epochs=short_epochs,
                      final_epochs=final_epochs, verify=not no_verify)
    summary = run_nas(opts)  # Ctrl-C: NasInterrupted, exit code 130, progress kept
    for w in summary["warnings"]:
        click.echo(f"edgec: warning: {w}", err=True)
    b = summary["best"]
    click.echo(f"best: {b['short']}  int8 val accuracy {b['val_acc_int8']:.4f}  "
               f"arena {b['arena']} B  SRAM ~{b['sram']} B  flash ~{b['flash']} B  "
               f"MACs {b['macs']:,}  input {'x'.join(map(str, b['input_shape']))}")
    click.echo(f"{summary['candidates']} candidates measured, {summary['fit']} fit, "
               f"{summary['trained']} trained in {summary['wall_seconds']} s")
    v = summary.get("verify") or {}
    if "fits" in v:
        click.echo(f"edgec compile: SRAM {v['sram']} B, flash {v['flash']} B "
                   f"({'within' if v['fits'] else 'OVER'} the budgets), emulator check "
                   f"{v['check_mismatches']} mismatches")
    click.echo(f"wrote {out_dir}/: {', '.join(summary['outputs'])}")


_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2,
               "MIB": 1024 ** 2}
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600}


def _size(text: str | None, option: str) -> int | None:
    """'64KB', '1MB', '512K', '65536' -> bytes (KB = 1024 B, as the board files count)."""
    if text is None:
        return None
    import re
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else None
    if m is None or unit not in _SIZE_UNITS or float(m.group(1)) <= 0:
        raise click.BadParameter(f"'{text}' is not a size like 64KB, 1MB or 65536",
                                 param_hint=option)
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def _duration(text: str) -> float:
    """'10m', '90s', '1h30m', '45' (seconds) -> seconds."""
    import re
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms]?)", text.strip().lower())
    joined = "".join(f"{n}{u}" for n, u in parts)
    if not parts or joined != re.sub(r"\s+", "", text.strip().lower()):
        raise click.BadParameter(f"'{text}' is not a duration like 10m, 90s or 1h30m",
                                 param_hint="--time")
    seconds = sum(float(n) * _TIME_UNITS[u or "s"] for n, u in parts)
    if seconds <= 0:
        raise click.BadParameter(f"'{text}' is not a positive duration", param_hint="--time")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Entry point: EdgecError -> one line on stderr and its exit code; never a traceback."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    previous = _terminate_as_interrupt()
    try:
        cli.main(args=argv, prog_name="edgec", standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return 2
    except (click.Abort, KeyboardInterrupt):
        click.echo("edgec: interrupted; no output was written", err=True)
        return 130
    except EdgecError as e:
        if debug:
            raise
        click.echo(f"edgec: error: {e}", err=True)
        return e.exit_code
    except Exception as e:  # a bug in edgec: still one line, the traceback only on --debug
        if debug:
            raise
        click.echo(f"edgec: internal error: {type(e).__name__}: {e} "
                   f"(rerun with --debug for the traceback and report it)", err=True)
        return 70
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt():
    """SIGTERM (a CI job cancelled, `kill`) cleans up like Ctrl-C: no staging directory, no
    emulator left running. Returns the previous handler (None off the main thread)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return None


if __name__ == "__main__":
    sys.exit(main())
