"""The `edgec` command. The only place that reads argv, prints, and chooses exit codes."""
from __future__ import annotations

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
              help=".tflite: 'int8' drops a QUANTIZE/DEQUANTIZE at the model's boundary so the "
                   "deployed model takes and gives int8.")
@click.option("--no-build", is_flag=True, help="Stop after emitting C (no cross toolchain needed).")
@click.option("--no-run", is_flag=True, help="Stop after building the firmware (no emulator).")
@click.option("--profile", is_flag=True, help="Count instructions per layer on the emulator.")
@click.option("--seed", default=0, show_default=True, help="Seed for generated data.")
@click.option("--optimize", type=click.Choice(["speed", "size"]), default="speed",
              show_default=True,
              help="speed: fastest kernel variants (int16 weights where flash allows), -O2; "
                   "size: compact variants (int8 weights), -Os.")
def compile_cmd(model, target, calib, out_dir, input_shape, trust_pickle, io, no_build, no_run,
                profile, seed, optimize):
    """Compile MODEL (.pt TorchScript, .pt2 torch.export, .onnx, .tflite) for a target board."""
    from .options import CompileOptions
    from .pipeline import compile_model
    from .report import format_summary
    opts = CompileOptions(model=model, target=target, out_dir=out_dir, calib=calib,
                          input_shape=_shape(input_shape), trust_pickle=trust_pickle, io=io,
                          build=not no_build, run=not (no_build or no_run), profile=profile,
                          seed=seed, optimize=optimize)
    result = compile_model(opts)
    for w in result.report.get("warnings", []):
        click.echo(f"edgec: warning: {w}", err=True)
    click.echo(format_summary(result.report))
    written = sorted(p.name + ("/" if p.is_dir() else "") for p in result.out_dir.iterdir()
                     if p.name in ("src", "report.json", "report.md", "report.html",
                                   "model.int8.onnx", "firmware.elf", "model.json"))
    click.echo(f"wrote {result.out_dir}/: {', '.join(written)}")


@cli.command("run")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--input", "-i", "input_path", required=True, type=click.Path(path_type=Path),
              help=".npy input: one sample, or N samples along a leading axis.")
@click.option("--output", "-o", "output_path", type=click.Path(path_type=Path),
              help="Where to write the outputs (.npy).")
@click.option("--profile", is_flag=True, help="Also print instructions per layer.")
@click.option("--timeout", default=600.0, show_default=True, help="Emulator time limit, seconds.")
def run_cmd(out_dir, input_path, output_path, profile, timeout):
    """Run a compiled model on the emulator with the inputs in INPUT."""
    import numpy as np

    from .calibdata import read_samples
    from .runner import run_compiled
    x = read_samples(input_path)
    res = run_compiled(out_dir, x, profile=profile, timeout_s=timeout)
    if output_path is not None:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(output_path, res.y)
    n = len(res.instructions)
    mean = sum(res.instructions) / max(n, 1)
    click.echo(f"{n} inference(s); instructions per inference: {mean:,.0f}"
               + (f" (min {min(res.instructions):,}, max {max(res.instructions):,})" if n > 1 else ""))
    if profile and res.layer_instructions:
        click.echo("layer  instructions (first inference)")
        for i, v in enumerate(res.layer_instructions[0]):
            click.echo(f"{i:5d}  {v:,}")
    if output_path is not None:
        click.echo(f"wrote {output_path} {tuple(res.y.shape)} {res.y.dtype}")


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
    """Reprint the summary of a compiled model."""
    import json

    from .report import format_summary
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise EdgecError(f"'{out_dir}' has no report.json; create it with 'edgec compile'")
    click.echo(format_summary(json.loads(path.read_text())))


def main(argv: list[str] | None = None) -> int:
    """Entry point: EdgecError -> one line on stderr and its exit code; never a traceback."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
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


if __name__ == "__main__":
    sys.exit(main())
