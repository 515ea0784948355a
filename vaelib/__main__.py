"""Command line: `python -m vaelib list|train|evaluate|sample`, for training outside notebooks.

    python -m vaelib list
    python -m vaelib train NAME [--profile P] [--out DIR] [--device D] [--seed S] [--retrain]
    python -m vaelib evaluate NAME [--profile P] [--out DIR] [--seed S] [--iw-samples K] [--images N]
    python -m vaelib sample NAME [--n N] [--png FILE] [--seed S] [--model-seed S]

`train` writes DIR/NAME/seed-S/checkpoint.pt and DIR/NAME/seed-S/metrics.json; `evaluate`
prints metrics as JSON (nats per image) and adds them to that metrics.json. Every failure
the user can fix (a bad argument, an unwritable or full disk, a checkpoint or metrics file
that cannot be used) ends in one line `error: ...` with what to do, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import __version__
from .checkpoint import CheckpointError
from .checks import check_positive_int, check_seed
from .data import DataSourceError
from .experiments import EXPERIMENTS, PROFILES, get_experiment, resolve_profile
from .files import WriteError, check_output_file, describe_os_error
from .reference import (PER_IMAGE_FILE, WEIGHTS, available, export_reference, read_reference_metrics,
                        save_per_image_log_px)
from .runs import METRICS, read_metrics, update_metrics
from .settings import cpu_name, resolve_device
from .train import TrainingDiverged
from .trained import get_or_train


def _threads(n: int) -> str:
    return f"{n} torch thread{'' if n == 1 else 's'}"


def _provenance(args: argparse.Namespace, device: torch.device) -> dict:
    return {
        "command": "python -m vaelib " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "vaelib": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({cpu_name()}, {_threads(torch.get_num_threads())})"),
    }


def cmd_list(args: argparse.Namespace) -> int:
    width = max(map(len, EXPERIMENTS))
    committed = set(available("full"))
    for name, exp in sorted(EXPERIMENTS.items()):
        mark = "  [reference run committed for full]" if name in committed else ""
        print(f"{name:<{width}}  {exp.description}{mark}")
    print("\nprofiles: " + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    run = get_or_train(args.name, args.profile, out=args.out, device=args.device, seed=args.seed, retrain=args.retrain)
    if run.checkpoint.name == WEIGHTS:  # a committed reference run: nothing was trained
        print(json.dumps(read_reference_metrics(args.name, run.profile.name), indent=2))
        return 0
    h = run.history
    device = next(run.model.parameters()).device
    metrics = {
        "epochs": h.epoch[-1],
        "train_loss": h.train_loss[-1],
        "test_neg_elbo_during_training": h.test_neg_elbo[-1],
        "train_seconds": sum(h.seconds),
        "wall_seconds": time.perf_counter() - began,
        "train": _provenance(args, device),
    }
    metrics = update_metrics(run.checkpoint.parent, run.run_record, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .evaluate import scorecard

    run = get_or_train(args.name, args.profile, out=args.out, device=args.device, seed=args.seed)
    if run.checkpoint.name != WEIGHTS:  # a corrupt metrics.json is reported now, not after the evaluation
        read_metrics(run.checkpoint.parent / METRICS)
    began = time.perf_counter()
    profile = run.profile
    test = load_dataset(run.experiment.dataset, split="classic").test.images
    k = args.iw_samples if args.iw_samples is not None else profile.iw_samples
    n_iw = args.images if args.images is not None else profile.iw_images
    card = scorecard(run.model, test, k, n_iw, progress=not args.quiet)
    device = next(run.model.parameters()).device
    metrics = {
        **card.metrics(),
        "evaluate_seconds": time.perf_counter() - began,
        "evaluate": _provenance(args, device),
    }
    if run.checkpoint.name == WEIGHTS:  # a committed reference run is never written to
        print(json.dumps(metrics, indent=2))
        return 0
    metrics = update_metrics(run.checkpoint.parent, run.run_record, metrics)
    # The per-image estimates, so that two models can be compared image by image (paired).
    save_per_image_log_px(run.checkpoint.parent / PER_IMAGE_FILE, card.ll.per_image, {"k": k, "images": card.ll.n_images})
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .plots import save_image_grid

    png = check_output_file(Path(args.png or f"{args.name}-samples.png"), "--png")  # before any training
    run = get_or_train(args.name, args.profile, out=args.out, device=args.device, seed=args.model_seed)
    torch.manual_seed(args.seed)
    images = run.model.sample(args.n).cpu()
    png = save_image_grid(images, png, title=f"{args.name}: {args.n} samples from the prior ({run.profile.name} profile)")
    print(png)
    return 0


def cmd_export_reference(args: argparse.Namespace) -> int:
    run = get_or_train(args.name, args.profile, out=args.out, device="cpu", seed=0, progress=False)
    if run.checkpoint.name == WEIGHTS:
        raise ValueError(f"{args.name} under {run.profile.name} already is a reference run: {run.checkpoint.parent}")
    folder = run.checkpoint.parent
    metrics = read_metrics(folder / METRICS)
    if "test_nll" not in metrics:
        raise ValueError(f"{folder} has no evaluation yet: run `python -m vaelib evaluate {args.name}` first")
    print(export_reference(run, metrics))
    return 0


def _checked_int(check):
    """An argparse type: the text as an integer, passed through `check` (a `vaelib.checks` function)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        try:
            return check(value, "")  # argparse names the option: "argument --n: must be ..."
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None

    return parse


_seed, _positive = _checked_int(check_seed), _checked_int(check_positive_int)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument ends in one `error: ...` line (exit status 2), not a usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vaelib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="named experiments and profiles").set_defaults(func=cmd_list)
    for name, func, text in (
        ("train", cmd_train, "train (or load the cached run of) an experiment"),
        ("evaluate", cmd_evaluate, "test ELBO, KL and importance-weighted NLL"),
        ("sample", cmd_sample, "a PNG grid of samples from the prior"),
        ("export-reference", cmd_export_reference, "copy a trained, evaluated run into the reference set (vaelib/reference_runs)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("name", help="experiment name (see `list`)")
        p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $VAELIB_PROFILE, else full on GPU / cpu")
        p.add_argument("--out", default=None, help="runs folder (default: ~/.cache/vaelib/runs/<profile>)")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
        if name == "sample":
            p.add_argument("--seed", type=_seed, default=0, help="seed of the samples drawn (default 0)")
            p.add_argument("--model-seed", type=_seed, default=0, help="training seed of the model sampled (default 0)")
        else:
            p.add_argument("--seed", type=_seed, default=0, help="training seed of the run (default 0)")
        p.set_defaults(func=func)
        if name == "train":
            p.add_argument("--retrain", action="store_true", help="ignore a cached checkpoint")
        if name == "evaluate":
            p.add_argument("--iw-samples", type=_positive, default=None, help="k per image (default: the profile's)")
            p.add_argument("--images", type=_positive, default=None, help="test images for the IW estimate (default: the profile's)")
            p.add_argument("--quiet", action="store_true")
        if name == "sample":
            p.add_argument("--n", type=_positive, default=64, help="number of samples (default 64)")
            p.add_argument("--png", default=None, help="image file to write (default: NAME-samples.png here)")
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (a run kept beside another, a data cache not written) as one `warning: ...` line."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            if getattr(args, "name", None) is not None:
                get_experiment(args.name)
            if getattr(args, "profile", None) is not None:
                resolve_profile(args.profile)
            if getattr(args, "device", None) is not None:
                resolve_device(args.device)
            status = args.func(args)
            sys.stdout.flush()  # a reader that went away shows here, inside this try
            return status
        except (ValueError, TypeError, CheckpointError, DataSourceError, TrainingDiverged, WriteError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # the reader went away (`python -m vaelib list | head -1`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
            return 141  # 128 + SIGPIPE: what a Unix tool that the closed pipe stopped reports
        except OSError as exc:  # any other file-system failure: one line, not a traceback
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"error: {describe_os_error(exc)}{where}; check the free space and permissions there", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
