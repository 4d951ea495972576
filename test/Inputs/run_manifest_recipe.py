"""Runs the manifest recipe of docs/Formats.md as written.

usage: run_manifest_recipe.py FORMATS_MD OUTDIR

Writes OUTDIR/recipe.json (the recipe on a small model), OUTDIR/model.pth
(that model's state dict) and OUTDIR/other.pth (a model with another
input width and a float64 norm).
"""
import os
import sys

import torch


def recipe_source(md_path):
    text = open(md_path).read()
    start = text.index("<!-- manifest-recipe -->")
    start = text.index("```python\n", start) + len("```python\n")
    return text[start:text.index("```", start)]


def main(md_path, outdir):
    scope = {}
    exec(recipe_source(md_path), scope)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
    os.chdir(outdir)
    scope["write_manifest"](model, "recipe.json")
    torch.save(model.state_dict(), "model.pth")
    other = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8))
    other[1].double()
    torch.save(other.state_dict(), "other.pth")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
