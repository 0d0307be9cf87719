"""Trader environment throughput: decision steps per second vs the raw synthetic generator.

    .venv/bin/python benchmarks/trader_env.py [--episodes 6]

Three numbers from the same run and the same seeds:
- generator: sessions produced by the raw synthetic generator (no books or features), counted in
  the decision steps they contain;
- env: full episodes (generate, run the feed through books/flows/features into a tape, step with
  HOLD/BUY/SELL through the broker);
- env on a recorded tape: stepping only (what every extra policy costs in a paired evaluation).
The ratio env / generator says how much the state and feature code costs on top of producing the data.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from stratforge.trader.env import EnvConfig, TraderEnv
from stratforge.trader.markets.synthetic import generate_session


def env_steps_per_second(episodes: int = 6, seed0: int = 30_000_000) -> dict[str, Any]:
    cfg = EnvConfig()
    seeds = list(range(seed0, seed0 + episodes))
    steps_per_episode = int(900 / cfg.tick_s)

    t = time.perf_counter()
    n_msgs = 0
    for s in seeds:
        n_msgs += len(generate_session(s, cfg.synthetic).messages)
    gen_s = time.perf_counter() - t

    env = TraderEnv(cfg)
    rng = np.random.default_rng(0)
    steps = 0
    t = time.perf_counter()
    for s in seeds:
        env.reset(seed=s)
        done = False
        while not done:
            _, _, done, _, _ = env.step(rng.choice(3, size=env.n, p=[0.9, 0.05, 0.05]))
            steps += 1
    env_s = time.perf_counter() - t

    tape_env = TraderEnv(cfg, tape=env.tape)
    tape_steps = 0
    t = time.perf_counter()
    for _ in range(episodes):
        tape_env.reset()
        done = False
        while not done:
            _, _, done, _, _ = tape_env.step(rng.choice(3, size=tape_env.n, p=[0.9, 0.05, 0.05]))
            tape_steps += 1
    tape_s = time.perf_counter() - t

    gen_rate = episodes * steps_per_episode / gen_s
    env_rate = steps / env_s
    return {
        "episodes": episodes,
        "markets_per_step": env.n,
        "messages_per_episode": n_msgs / episodes,
        "generator_steps_per_s": gen_rate,
        "env_steps_per_s": env_rate,
        "env_market_steps_per_s": env_rate * env.n,
        "tape_steps_per_s": tape_steps / tape_s,
        "ratio_env_vs_generator": env_rate / gen_rate,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=6)
    args = ap.parse_args()
    r = env_steps_per_second(args.episodes)
    print(
        f"episodes: {r['episodes']} ({r['markets_per_step']} markets, {r['messages_per_episode']:.0f} msgs each)"
    )
    print(f"raw generator:        {r['generator_steps_per_s']:9.0f} decision steps/s")
    print(
        f"env (feed+features):  {r['env_steps_per_s']:9.0f} steps/s ({r['env_market_steps_per_s']:.0f} market-steps/s)"
    )
    print(f"env on recorded tape: {r['tape_steps_per_s']:9.0f} steps/s")
    print(f"ratio env / generator: {r['ratio_env_vs_generator']:.3f}")


if __name__ == "__main__":
    main()
