"""The lab's real controllers: built from their pinned Go modules, cached by version.

The pins live in ``roles/versions/defaults/main.yml`` (``versions_lab_controllers``): per controller the Go
module and release, the package holding its ``main``, the variable its release build stamps the version
into, and the container image it stands in for. A binary is built once per pin, Go release and architecture
into ``${XDG_CACHE_HOME:-~/.cache}/tokenlabs/controllers/<key>/``; the module and build caches beside it are
shared by every version, so a bumped pin rebuilds only what changed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenlabs.lab import sources

ENV_DIR = "TOKENLABS_CONTROLLERS_BIN"


class BuildError(RuntimeError):
    """A controller could not be built."""


@dataclass(frozen=True)
class Controller:
    name: str
    module: str
    version: str
    package: str
    version_var: str
    image: str
    entrypoint_args: tuple[str, ...] = ()

    def cache_key(self, go_version: str, arch: str) -> str:
        blob = json.dumps([self.name, self.module, self.version, self.package, self.version_var, go_version, arch])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pinned(pins: Mapping[str, Any] | None = None) -> list[Controller]:
    """The controllers the lab runs, from the version pins."""
    table = (pins or sources.versions())["versions_lab_controllers"]
    return [
        Controller(name=name, **{**spec, "entrypoint_args": tuple(spec.get("entrypoint_args", ()))})
        for name, spec in table.items()
    ]


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tokenlabs" / "controllers"


def _go(*args: str, cwd: Path | None = None, env: Mapping[str, str]) -> str:
    proc = subprocess.run(["go", *args], cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"go {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _log(message: str) -> None:
    print(f"[controllers] {message}", file=sys.stderr, flush=True)


def ensure(controllers: list[Controller] | None = None) -> dict[str, Path]:
    """Every pinned controller binary, building what the cache lacks; name -> path.

    ``$TOKENLABS_CONTROLLERS_BIN`` names a directory holding binaries the caller vouches for instead.
    """
    wanted = controllers if controllers is not None else pinned()
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        found = {c.name: Path(explicit) / c.name for c in wanted}
        missing = [name for name, path in found.items() if not os.access(path, os.X_OK)]
        if missing:
            raise BuildError(f"{ENV_DIR}={explicit} lacks {', '.join(missing)}")
        return found
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOMODCACHE": str(root / "gomod"),
        "GOCACHE": str(root / "gobuild"),
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly",
    }
    go_version = _go("env", "GOVERSION", env=env).strip()
    arch = _go("env", "GOARCH", env=env).strip()
    paths = {c.name: root / c.cache_key(go_version, arch) / c.name for c in wanted}
    todo = [c for c in wanted if not os.access(paths[c.name], os.X_OK)]
    if not todo:
        return paths
    with _locked(root / ".lock"):
        todo = [c for c in todo if not os.access(paths[c.name], os.X_OK)]
        for index, ctl in enumerate(todo, 1):
            _log(f"building {ctl.name} {ctl.version} ({index}/{len(todo)}, {go_version}; cold: minutes each)")
            started = time.monotonic()
            _build(ctl, paths[ctl.name], env)
            _log(f"{ctl.name} {ctl.version} built in {time.monotonic() - started:.0f} s")
    return paths


def _build(ctl: Controller, target: Path, env: Mapping[str, str]) -> None:
    info = json.loads(_go("mod", "download", "-json", f"{ctl.module}@{ctl.version}", env=env))
    if info.get("Error"):
        raise BuildError(f"{ctl.module}@{ctl.version}: {info['Error']}")
    source = Path(info["Dir"])
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / ctl.name
        ldflags = f"-s -w -X {ctl.version_var}={ctl.version}"
        # The module is its own main module here, so its go.mod and go.sum decide every dependency.
        _go("build", "-trimpath", "-ldflags", ldflags, "-o", str(out), ctl.package, cwd=source, env=env)
        os.replace(out, target)


def image_table(paths: Mapping[str, Path], controllers: list[Controller] | None = None) -> dict[str, dict[str, Any]]:
    """image repository -> what the kubelet runs for a container of that image."""
    wanted = controllers if controllers is not None else pinned()
    return {
        c.image: {
            "name": c.name,
            "binary": str(paths[c.name]),
            "version": c.version,
            "entrypoint_args": list(c.entrypoint_args),
        }
        for c in wanted
    }


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="Build the lab's controllers at their pinned versions.").parse_args(argv)
    try:
        paths = ensure()
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
