"""Page weight and precision of the latent explorer's in-page decoder, float16 against float32.

    python benchmarks/explorer_weights.py vae-z10 mog-z10-m1000 [--profile smoke] [--checkpoint PATH]

For each trained model (from the run cache, as the chapters get it, or from --checkpoint):
the bytes one explorer adds to a page (its widget state as embedded: JSON with base64
buffers, raw and gzipped) and the largest difference in pixel probability between the
page's decoder and model.decode, over prior draws and codes of test images.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import torch
from ipywidgets.embed import embed_data

from vaelib.checkpoint import load_checkpoint, load_model_state
from vaelib.data import load_dataset
from vaelib.experiments import get_experiment
from vaelib.explorer import decode_with_page_weights, latent_explorer
from vaelib.trained import get_or_train


def load(name: str, profile: str, checkpoint: Path | None) -> torch.nn.Module:
    """A trained model: from `checkpoint` (any epoch) or via get_or_train."""
    if checkpoint is None:
        return get_or_train(name, profile, progress=False).model.eval()
    model = get_experiment(name).build()
    load_model_state(model, load_checkpoint(checkpoint), checkpoint)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="experiment names, e.g. vae-z10 mog-z10-m1000")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint of the (single) named experiment")
    args = parser.parse_args()
    if args.checkpoint and len(args.names) != 1:
        parser.error("--checkpoint goes with exactly one experiment name")
    test = load_dataset("mnist", split="classic").test
    images, labels = test.images[:1000], test.labels[:1000]
    for name in args.names:
        model = load(name, args.profile, args.checkpoint)
        with torch.no_grad():
            z = torch.cat([model.prior.sample(500), model.encode(images.float() / 255)[0]])
            expected = model.decode(z).double().numpy()
        for dtype in ("float16", "float32"):
            explorer = latent_explorer(model, images=images, labels=labels, weights=dtype)
            state = json.dumps(embed_data(views=[explorer])["manager_state"]["state"][explorer.model_id])
            page = decode_with_page_weights(explorer.decoder_layers, explorer.decoder_weights, dtype, z.numpy())
            diff = np.abs(page - expected)
            print(f"{name} {dtype}: state {len(state) / 1e6:.2f} MB in the page ({len(gzip.compress(state.encode())) / 1e6:.2f} MB "
                  f"gzipped), binary {explorer.page_bytes / 1e6:.2f} MB; |page - model.decode| max {diff.max():.1e}, "
                  f"99.9th percentile {np.quantile(diff, 0.999):.1e}, in grey levels max {255 * diff.max():.2f}")


if __name__ == "__main__":
    main()
