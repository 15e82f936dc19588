"""Build what spark-submit ships: the code zip and (optionally) a packed Python environment.

    python deploy/package.py            # dist/corpusmill.zip and dist/corpusmill-env.tar.gz
    python deploy/package.py --zip-only # dist/corpusmill.zip only (about 0.1 s; submit.sh does this)

``dist/corpusmill.zip`` holds ``jobs/`` and ``udfs/`` (pure Python) for ``--py-files``; its bytes only
change when a source file changes (sorted entries, fixed timestamps), so a cluster's file cache and
a diff of two builds mean something.

``dist/corpusmill-env.tar.gz`` is a ``venv-pack`` archive of a fresh virtual environment holding the
third-party runtime dependencies from ``pyproject.toml`` (not corpusmill itself: the code travels in
the zip, so a code change does not rebuild the environment) for
``--archives dist/corpusmill-env.tar.gz#environment`` with
``spark.pyspark.python=./environment/bin/python``. pyspark is left out by default: the cluster's Spark
puts its own pyspark on the workers' path (``--with-pyspark`` keeps it, +450 MB). A venv-pack archive
does not contain the interpreter: the nodes need the same Python version at the same path
(``dist/corpusmill-env.json`` records it; ``--python-prefix /usr`` relinks it to another prefix);
where they have none, use the container image (deploy/k8s).
The environment is rebuilt only when the dependency list or the interpreter changes.

Stdlib only; run it with the corpusmill environment's interpreter (``.venv/bin/python``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("jobs", "udfs")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: same bytes on every build
SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def source_files(repo: Path = REPO) -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((repo / package).rglob("*")):
            rel = path.relative_to(repo)
            if path.is_file() and not SKIP_DIRS & set(rel.parts) and not path.name.endswith(SKIP_SUFFIXES):
                files.append(rel)
    return files


def build_zip(dist: Path, repo: Path = REPO) -> Path:
    """``dist/corpusmill.zip`` with jobs/ and udfs/, written atomically."""
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / "corpusmill.zip"
    staging = dist / f".corpusmill.zip.{os.getpid()}.tmp"  # concurrent builds (Airflow tasks) never share one
    with zipfile.ZipFile(staging, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in source_files(repo):
            info = zipfile.ZipInfo(rel.as_posix(), date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, (repo / rel).read_bytes())
    os.replace(staging, target)
    return target


def _project_dependencies(text: str) -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10 (e.g. the Spark image's python3): the list is plain enough
        block = re.search(r"^\[project\].*?^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
        if not block:
            raise SystemExit("pyproject.toml: no [project] dependencies list found") from None
        return re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    return list(tomllib.loads(text)["project"]["dependencies"])


def runtime_requirements(repo: Path = REPO, with_pyspark: bool = False) -> list[str]:
    """``[project] dependencies`` of pyproject.toml (pyspark dropped unless asked for)."""
    deps = _project_dependencies((repo / "pyproject.toml").read_text())
    name = re.compile(r"^\s*([A-Za-z0-9_.-]+)")
    return [d for d in deps if with_pyspark or name.match(d).group(1).lower() != "pyspark"]  # type: ignore[union-attr]


def build_env(dist: Path, work: Path, with_pyspark: bool = False, python: str = sys.executable,
              python_prefix: str | None = None, log=print) -> Path:
    """``dist/corpusmill-env.tar.gz``: a venv with the runtime deps, packed by venv-pack."""
    requirements = runtime_requirements(with_pyspark=with_pyspark)
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0], sys._base_executable)"],
                             check=True, capture_output=True, text=True).stdout.split()
    stamp = {"requirements": requirements, "python_version": version[0], "base_python": version[1],
             "with_pyspark": with_pyspark, "python_prefix": python_prefix}
    digest = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]
    target = dist / "corpusmill-env.tar.gz"
    stamp_path = dist / "corpusmill-env.json"
    if target.exists() and stamp_path.exists() and json.loads(stamp_path.read_text()).get("digest") == digest:
        log(f"[package] {target} is up to date ({digest})")
        return target
    venv = work / "pack-env"
    shutil.rmtree(venv, ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # venv-pack goes into the packed venv itself: no extra dependency for the corpusmill venv.
    subprocess.run([*pip, *requirements, "venv-pack>=0.2"], check=True)
    log(f"[package] installed {len(requirements)} requirements in {time.monotonic() - t0:.1f}s")
    t0 = time.monotonic()
    dist.mkdir(parents=True, exist_ok=True)
    staging = dist / f".corpusmill-env.tar.gz.{os.getpid()}.tmp"
    relink = ["--python-prefix", python_prefix] if python_prefix else []
    subprocess.run([str(venv / "bin" / "venv-pack"), "-p", str(venv), "-o", str(staging), "--format", "tar.gz",
                    "--force", "-q", *relink], check=True)
    os.chmod(staging, 0o644)  # venv-pack writes 0600; a cluster upload may run as another user
    os.replace(staging, target)
    stamp_path.write_text(json.dumps({**stamp, "digest": digest}, indent=2) + "\n")
    log(f"[package] packed {target} ({target.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t0:.1f}s")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/package.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default=str(REPO / "dist"), help="output directory (default dist/)")
    parser.add_argument("--work", default=str(REPO / "build"), help="scratch directory (default build/)")
    parser.add_argument("--zip-only", action="store_true", help="build the code zip only")
    parser.add_argument("--with-pyspark", action="store_true", help="keep pyspark in the packed env")
    parser.add_argument("--python-prefix", default=None,
                        help="prefix of the nodes' Python (e.g. /usr) when it differs from this machine's")
    parser.add_argument("--print-requirements", action="store_true",
                        help="print the runtime requirements (without pyspark) and exit (used by deploy/k8s/Dockerfile)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.print_requirements:
        print("\n".join(runtime_requirements(with_pyspark=args.with_pyspark)))
        return 0
    log = (lambda _m: None) if args.quiet else print
    path = build_zip(Path(args.dist))
    log(f"[package] {path} ({len(source_files())} files, {path.stat().st_size / 1e3:.0f} kB)")
    if not args.zip_only:
        build_env(Path(args.dist), Path(args.work), with_pyspark=args.with_pyspark,
                  python_prefix=args.python_prefix, log=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
