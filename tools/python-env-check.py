"""Checks the Debian Python environment of the model tools and the benchmark's baseline.

Usage: python3 tools/python-env-check.py MODULE [MODULE ...]
Exit 0 when every module imports and torch (if named) does not multiply matrices with the
reference BLAS; else exit 1 with what is missing on stderr.

Why OpenBLAS: Debian's torch links the generic libblas.so.3, which points at the reference BLAS
until OpenBLAS is installed. Everything still works, about 20x slower per matrix multiply: a
training run's minute budget buys about an eighth of the steps, and the benchmark's PyTorch
baseline would be measured far slower than it is when deployed. train.py calls missing().
"""

import importlib
import sys


def missing(modules):
    found = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # any import failure counts as missing
            found.append(f"{name} ({type(error).__name__}: {error})")
    if "torch" in modules and not found:
        import torch

        torch.ones(2, 2) @ torch.ones(2, 2)
        # The libblas.so.3 the process mapped, by its real path: Debian's reference BLAS lives in
        # .../blas/, OpenBLAS's in .../openblas-*/ (a torch built with MKL maps none).
        with open("/proc/self/maps") as maps:
            blas = {line.split()[-1] for line in maps if "/libblas.so" in line}
        slow = sorted(path for path in blas if "openblas" not in path)
        if slow:
            found.append(f"OpenBLAS (torch multiplies with {slow[0]}: install libopenblas0-pthread)")
    return found


if __name__ == "__main__":
    problems = missing(sys.argv[1:])
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)
