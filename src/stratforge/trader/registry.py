"""Model registry: imported models are immutable, hashed copies; one is active; rollback is exact.

Layout under ``<data_dir>/models/<name>/``: ``rl_model.safetensors`` and ``rl_model_stats.npz`` (the
published weight format, see :mod:`stratforge.trader.model`). Every version row in the store records
both SHA-256 hashes, checked again on promote, rollback and load, so the previous version (the backup a
rollback returns to) is provably the bytes that were running before.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from sqlalchemy import select

from stratforge.stats import paired
from stratforge.trader.storage import ModelVersion, Store
from stratforge.trader.storage.models import utcnow

WEIGHTS = "rl_model.safetensors"
STATS = "rl_model_stats.npz"


class RegistryError(RuntimeError):
    """A registry operation that cannot proceed; the message says why in one line."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_files(path: Path) -> tuple[Path, Path | None]:
    """Weights and (optional) stats of a model directory or ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        weights, stats = path / WEIGHTS, path / STATS
    else:
        weights, stats = path, path.with_name(f"{path.stem}_stats.npz")
    if not weights.exists():
        raise RegistryError(f"no model weights at {weights}")
    return weights, (stats if stats.exists() else None)


class Registry:
    def __init__(self, store: Store, data_dir: Path | str) -> None:
        self.store = store
        self.root = Path(data_dir) / "models"

    def list(self) -> list[ModelVersion]:
        return self.store.model_versions()

    def get(self, name: str) -> ModelVersion:
        for v in self.list():
            if v.name == name:
                return v
        raise RegistryError(f"no model named {name!r} (see `stratforge trader models list`)")

    def active(self) -> ModelVersion | None:
        return next((v for v in self.list() if v.status == "active"), None)

    def import_model(
        self, source: Path | str, name: str | None = None, notes: str | None = None
    ) -> ModelVersion:
        """Validate (it must load), copy and hash a model; it starts as ``available``."""
        from stratforge.trader.model import load_policy

        weights, stats = model_files(Path(source))
        try:
            load_policy(weights.parent if Path(source).is_dir() else weights)
        except Exception as exc:
            raise RegistryError(f"{source} is not a loadable model: {exc}") from None
        w_hash = sha256(weights)
        s_hash = sha256(stats) if stats else None
        for v in self.list():
            if v.weights_sha256 == w_hash and v.stats_sha256 == s_hash:
                raise RegistryError(f"already imported as {v.name!r}")
        name = name or f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', weights.stem)}-{w_hash[:8]}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
            raise RegistryError("model names use letters, digits, '.', '_' and '-' (at most 100)")
        dest = self.root / name
        if dest.exists():
            raise RegistryError(f"a model named {name!r} already exists")
        dest.mkdir(parents=True)
        shutil.copy2(weights, dest / WEIGHTS)
        if stats:
            shutil.copy2(stats, dest / STATS)
        row = ModelVersion(
            name=name,
            source_path=str(Path(source).resolve()),
            stored_path=str(dest.resolve()),
            weights_sha256=w_hash,
            stats_sha256=s_hash,
            status="available",
            notes=notes,
        )
        try:
            with self.store.session() as s:
                s.add(row)
        except Exception:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return row

    def verify(self, version: ModelVersion) -> Path:
        """The stored directory, after checking both hashes (a changed file is refused)."""
        path = Path(version.stored_path)
        weights, stats = path / WEIGHTS, path / STATS
        if not weights.exists() or sha256(weights) != version.weights_sha256:
            raise RegistryError(f"model {version.name!r}: weights missing or modified (hash mismatch)")
        if version.stats_sha256 is not None and (not stats.exists() or sha256(stats) != version.stats_sha256):
            raise RegistryError(f"model {version.name!r}: stats missing or modified (hash mismatch)")
        return path

    def promote(self, name: str) -> ModelVersion:
        """Make ``name`` active; the previous active stays stored as the rollback target."""
        target = self.get(name)
        self.verify(target)
        with self.store.session() as s:
            for v in s.scalars(select(ModelVersion).where(ModelVersion.status == "active")):
                v.status = "available"
            row = s.get(ModelVersion, target.id)
            assert row is not None
            row.status = "active"
            row.promoted_at = utcnow()
        return self.get(name)

    def rollback(self) -> tuple[ModelVersion, ModelVersion]:
        """Retire the active model and re-activate the one promoted before it. Returns (from, to)."""
        current = self.active()
        if current is None:
            raise RegistryError("no active model to roll back from")
        previous = [
            v
            for v in self.list()
            if v.promoted_at is not None and v.status == "available" and v.id != current.id
        ]
        if not previous:
            raise RegistryError(f"no earlier promoted model to roll back to from {current.name!r}")
        target = max(previous, key=lambda v: v.promoted_at)
        self.verify(target)
        with self.store.session() as s:
            cur = s.get(ModelVersion, current.id)
            tgt = s.get(ModelVersion, target.id)
            assert cur is not None and tgt is not None
            cur.status = "retired"
            tgt.status = "active"
        return current, self.get(target.name)

    def resolve(self, ref: str | None) -> tuple[Path, str]:
        """A model path and version label from a registry name, a filesystem path, or the active model."""
        if ref is None:
            act = self.active()
            if act is None:
                raise RegistryError(
                    "no model given and none active (import and promote one, or pass --model)"
                )
            return self.verify(act), act.name
        p = Path(ref)
        if p.exists():
            return p, p.name
        return self.verify(self.get(ref)), ref


def paired_ci(
    a: dict[str, float], b: dict[str, float], confidence: float = 0.95
) -> tuple[int, float, float, float]:
    """(n, mean, low, high) of the per-market differences a - b over the union of markets.

    A market one model never traded counts as 0 PnL for it. The interval is stratforge.stats.paired's
    (Student t with the exact degrees of freedom); (0, 0, 0, 0) when there is no market at all.
    """
    keys = sorted(set(a) | set(b))
    if not keys:
        return 0, 0.0, 0.0, 0.0
    res = paired([a.get(k, 0.0) for k in keys], [b.get(k, 0.0) for k in keys], confidence)
    return res.n, res.mean_diff, res.low, res.high
