"""Score committed reference runs on the binary test set of Tomczak & Welling's code.

    python benchmarks/score_their_binarization.py tw-standard-z40 [NAME ...] [--profile tw] [--k 5000]

Our evaluations binarise the test images with vaelib's fixed draw (seed 0). Their code (and
the Exemplar VAE's fork, whose numbers chapter 5 compares with) draws its own:
`vaelib.data.their_binary_test_set`. This script scores each run's kept weights on that set
(IW with k samples, all 10,000 test images, torch seed 0) and adds to the run's folder
`iw_log_px_theirs.pt` (per-image log p(x)), `test_nll_theirs` / `test_nll_theirs_se` in
metrics.json and a `their_binarization` entry in provenance.json. Runs a run at a time;
one that already has the file is skipped unless --force.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone

import torch

from _common import cpu_name
from vaelib.data import load_dataset, their_binary_test_set
from vaelib.evaluate import iw_log_likelihood_of_inputs
from vaelib.files import write_json_atomically
from vaelib.reference import git_commit, load_run, reference_dir, save_per_image_log_px

THEIRS_FILE = "iw_log_px_theirs.pt"


def score(name: str, profile: str, k: int, force: bool) -> None:
    folder = reference_dir(name, profile)
    if (folder / THEIRS_FILE).is_file() and not force:
        print(f"{name}: already scored ({folder / THEIRS_FILE}); --force scores it again")
        return
    run = load_run(name, profile)
    data = load_dataset(run.provenance.get("identity", {}).get("data", {}).get("dataset", "mnist"), split="classic")
    x = their_binary_test_set(data.valid.images, data.test.images)
    began = time.perf_counter()
    result = iw_log_likelihood_of_inputs(run.model, x, k, seed=0)
    seconds = time.perf_counter() - began
    save_per_image_log_px(folder / THEIRS_FILE, result.per_image,
                          {"k": k, "n_images": result.n_images, "binarization": "theirs (np.random.seed(777))"})
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.update(test_nll_theirs=result.nll, test_nll_theirs_se=result.stderr, test_nll_theirs_k=k)
    write_json_atomically(folder / "metrics.json", metrics)
    provenance = json.loads((folder / "provenance.json").read_text())
    provenance["their_binarization"] = {
        "command": " ".join(["python"] + sys.argv), "k": k, "images": result.n_images, "seconds": round(seconds),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "commit": git_commit(), "device": f"cpu ({cpu_name()})",
    }
    write_json_atomically(folder / "provenance.json", provenance)
    print(f"{name}: NLL on their binarisation {result.nll:.2f} +- {result.stderr:.2f} "
          f"(ours: {metrics.get('test_nll', float('nan')):.2f}); k={k}, {result.n_images} images, {seconds:.0f} s",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--profile", default="tw")
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    for name in args.names:
        score(name, args.profile, args.k, args.force)


if __name__ == "__main__":
    main()
