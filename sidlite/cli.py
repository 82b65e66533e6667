"""The ``sidlite`` command line. Each subcommand lives in its own module under ``sidlite.commands``
and registers itself with ``register(subparsers)``; user errors print one line and exit with code 2."""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings

import torch

from . import __version__, commands
from .commands._common import explain_small_input
from .errors import SidliteError, for_command_line
from .plan import PlanRefused
from .runtime import parse_bytes, reuse_freed_memory


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidlite", description="Training-free single-image diffusion: "
                                     "new images from one image, with no network and no training.")
    parser.add_argument("--version", action="version", version=f"sidlite {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{commands.__name__}.{module}").register(subparsers)
    return parser


def _memory_advice(args, budget: str, plan=None) -> str:
    """What this command's own options can do about memory: ``budget`` ('raise' or 'lower') --memory-budget,
    shrink the output or the input, stride the queries (not where they are strided already, nor where a
    refused ``plan``, planned again with a stride of 2, would still not fit); only the options the command
    has are named."""
    parts = []
    if hasattr(args, "memory_budget"):
        parts.append("raise --memory-budget" if budget == "raise" else "lower --memory-budget (smaller bands)")
    smaller = [f"--{name.replace('_', '-')}" for name in ("size", "factor", "short_side", "extend", "max_side")
               if hasattr(args, name) and (name != "extend" or args.extend)]  # --extend only where it was used
    if (getattr(args, "batch_size", None) or 1) > 1:
        smaller.insert(0, "--batch-size")
    if smaller:
        parts.append("lower " + ", ".join(smaller))
    stride_helps = plan is None or plan.fits_with(query_stride=2)
    if getattr(args, "query_stride", 2) in (None, "auto", 1) and stride_helps:
        parts.append("use --query-stride 2")
    return ", or ".join(parts) or "use a smaller input"


def _out_of_memory(error: BaseException, args) -> int:
    """The one-line advice for memory that ran out, naming only the options this command has."""
    where = "GPU" if isinstance(error, torch.OutOfMemoryError) else "CPU"
    plan = "see the plan with --plan, then " if hasattr(args, "plan") else ""
    print(f"sidlite: error: out of {where} memory; {plan}{_memory_advice(args, 'lower')}", file=sys.stderr)
    return 2


def _refused(refused: PlanRefused, args) -> int:
    """A plan that cannot fit its budget, in one line naming only the options this command has."""
    print(f"sidlite: error: {refused.need}; {_memory_advice(args, 'raise', refused.plan)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        # the command owns its process: keep freed patch matrices, a share of the budget (see its docstring)
        budget = getattr(args, "memory_budget", None)
        reuse_freed_memory(None if budget is None else parse_bytes(budget))
        with warnings.catch_warnings():  # a warning is one line, without the source line that raised it
            warnings.showwarning = lambda message, *_, **__: print(f"sidlite: note: {for_command_line(str(message))}",
                                                                   file=sys.stderr)
            args.run(args)
    except PlanRefused as refused:
        return _refused(refused, args)
    except SidliteError as error:
        print(f"sidlite: error: {for_command_line(explain_small_input(str(error), args))}", file=sys.stderr)
        return 2
    except (MemoryError, torch.OutOfMemoryError) as error:
        return _out_of_memory(error, args)
    except RuntimeError as error:
        if "allocate memory" in str(error) or "out of memory" in str(error):
            return _out_of_memory(error, args)
        raise
    except KeyboardInterrupt:
        print("sidlite: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader closed early (`--plan | head`): what it read is all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exiting flushes nowhere, quietly
    return 0


if __name__ == "__main__":
    sys.exit(main())
