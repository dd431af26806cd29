"""Copy the peers' own notebooks and manifests into tests/corpus/, pinned to a commit.

    python tests/corpus/fetch.py NAME GIT_DIR [--commit SHA]

NAME is one of SOURCES below; GIT_DIR is a clone or bare mirror of its repository (read with
``git --git-dir``; nothing is downloaded). The files matching the source's patterns at that commit
(default: HEAD) replace tests/corpus/NAME/, with the repository's LICENSE, and SOURCES.json records the
repository, commit, license and files. CI has no internet beyond the package registries, so the corpus
is committed; run this again to move it to a newer commit.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES_FILE = HERE / "SOURCES.json"

SOURCES = {
    "kale": {
        "repository": "https://github.com/kubeflow-kale/kale",
        "license": "Apache-2.0",
        "patterns": ["*.ipynb"],
    },
    "same": {
        "repository": "https://github.com/SAME-Project/same-project",
        "license": "Apache-2.0",
        # Its manifests: same.yaml beside each sample, the tagged/*.yaml and same_configs/*.yaml test data.
        "patterns": ["*.ipynb", "*same.yaml", "test/testdata/tagged/*.yaml", "test/*/testdata/same_configs/*.yaml"],
    },
    "papermill": {
        "repository": "https://github.com/nteract/papermill",
        "license": "BSD-3-Clause",
        "patterns": ["*.ipynb"],
    },
}
LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING")
MAX_BYTES = 2_000_000          # a notebook with megabytes of outputs tests nothing more


def git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True).stdout


def git_dir_of(path: Path) -> Path:
    return path / ".git" if (path / ".git").is_dir() else path


def fetch(name: str, git_dir: Path, commit: str = "HEAD") -> dict:
    source = SOURCES[name]
    commit = git(git_dir, "rev-parse", f"{commit}^{{commit}}").decode().strip()
    listing = git(git_dir, "ls-tree", "-r", "-l", "-z", commit).decode().split("\0")
    entries = []
    for line in filter(None, listing):
        meta, path = line.split("\t", 1)
        _, kind, blob, size = meta.split()
        if kind == "blob":
            entries.append((path, blob, int(size) if size.isdigit() else 0))
    license_path = next((p for p, _, _ in entries if p in LICENSE_NAMES), None)
    if license_path is None:
        sys.exit(f"{name}: no LICENSE at the top of {commit}; refusing to copy files without one")
    wanted = [(p, b, s) for p, b, s in entries
              if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(Path(p).name, pat) for pat in source["patterns"])]
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    files, skipped = [], []
    for path, blob, size in [(license_path, None, 0)] + sorted(wanted):
        if size > MAX_BYTES:
            skipped.append({"path": path, "why": f"{size} bytes"})
            continue
        try:
            data = git(git_dir, "cat-file", "blob", blob or f"{commit}:{path}")
        except subprocess.CalledProcessError:
            skipped.append({"path": path, "why": "not in the mirror (large or LFS file)"})
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if blob is not None:
            files.append(path)
    record = {"repository": source["repository"], "commit": commit, "license": source["license"],
              "license_file": f"{name}/{license_path}", "files": files, "skipped": skipped}
    sources = json.loads(SOURCES_FILE.read_text()) if SOURCES_FILE.exists() else {}
    sources[name] = record
    SOURCES_FILE.write_text(json.dumps(dict(sorted(sources.items())), indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(SOURCES))
    parser.add_argument("git_dir", type=Path, help="a clone or bare mirror of the source's repository")
    parser.add_argument("--commit", default="HEAD")
    args = parser.parse_args(argv)
    record = fetch(args.name, git_dir_of(args.git_dir), args.commit)
    print(f"{args.name}: {len(record['files'])} files at {record['commit']} ({record['license']}); "
          f"{len(record['skipped'])} skipped")


if __name__ == "__main__":
    main()
