"""``python -m simlab.ollama``: serve the Ollama API on one port with the embedded model loaded."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until SIGTERM/SIGINT."""
    from simlab.ollama.assets import default_model, models_dir, ready

    asset = default_model()
    parser = argparse.ArgumentParser(prog="python -m simlab.ollama", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--model-path", type=Path, default=None, help=f"GGUF file (default: {asset.file})")
    parser.add_argument("--num-ctx", type=int, default=8192, help="context window of the loaded model")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--keep-alive", type=float, default=300.0, help="seconds reported by /api/ps")
    parser.add_argument("--cache-mb", type=int, default=1536, help="RAM for saved prompt prefixes (0: off)")
    parser.add_argument(
        "--state-dir",
        default=None,
        help="where the states of long system prompts are kept across restarts (default: prompt-states/ beside "
        "the model; '' to keep none)",
    )
    parser.add_argument("--state-mb", type=int, default=1024, help="disk for those states (0: off)")
    parser.add_argument(
        "--draft-tokens", type=int, default=8, help="tokens drafted from the context per verifying batch (0: off)"
    )
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = opts.model_path or models_dir() / asset.file
    if opts.model_path is None and not ready(asset, models_dir()):
        parser.error(f"the model is not assembled at {path}: run `python -m simlab.ollama.assets` (make install does)")
    if not path.is_file():
        parser.error(f"--model-path {path} does not exist")

    import uvicorn

    from simlab.ollama.app import OllamaServer, create_app
    from simlab.ollama.engine import ChatEngine

    if opts.draft_tokens < 0:
        parser.error(f"--draft-tokens {opts.draft_tokens}: give 0 (off) or a positive number")
    if opts.state_mb < 0:
        parser.error(f"--state-mb {opts.state_mb}: give 0 (off) or a positive number of MiB")
    state_dir = Path(opts.state_dir) if opts.state_dir else None
    if opts.state_dir is None:
        state_dir = path.parent / "prompt-states"
    engine = ChatEngine(
        path,
        n_ctx=opts.num_ctx,
        n_threads=opts.threads or os.cpu_count(),
        cache_mb=opts.cache_mb,
        draft_tokens=opts.draft_tokens,
        state_dir=state_dir,
        state_mb=opts.state_mb,
    )
    logging.getLogger("simlab.ollama").info("model %s loaded in %.1f s", asset.name, engine.load_duration / 1e9)
    app = create_app(OllamaServer(engine, asset, keep_alive_s=opts.keep_alive))
    uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
