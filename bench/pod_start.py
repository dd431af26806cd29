"""Pod start on Kubeflow, with and without a prebuilt image, in the clean-pod simulation.

Compiles examples/quickstart after a local run, then runs the pipeline with same_nb.kubeflow.podsim
twice per round, alternating: once as pods without an image (kfp's command installs kfp, the
component installs the step's lock with uv, hash-checked, from the registry) and once as pods of the
step images (each task's venv built first by the generated Dockerfile's install commands, so the pod
installs nothing). "Pod start" is the time from the container command's start to the step notebook's
first cell: kfp's own start, the bundle unpacked and, without an image, the lock installed. Venv
creation (the image pull / container creation on a cluster) is shown apart. Download caches are
shared and warm after the first round, as a node's would be. Medians over tasks and rounds.

Usage: python bench/pod_start.py [--rounds 2]
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from same_nb.kubeflow.compiler import compile_kubeflow  # noqa: E402
from same_nb.kubeflow.images import install_commands, lock_id  # noqa: E402
from same_nb.kubeflow.podsim import simulate  # noqa: E402
from same_nb.service import run_notebook  # noqa: E402

_INSTALLED = re.compile(r"installed \d+ packages in ([\d.]+) s")


def _figures(sim) -> list[dict]:
    rows = []
    for task in sim.tasks.values():
        if task.kind != "container":
            continue
        log = task.log.read_text(errors="replace")
        install = sum(float(m) for m in _INSTALLED.findall(log))
        rows.append({"task": task.name, "venv": task.seconds.get("venv", 0.0),
                     "prepare": task.seconds.get("prepare", 0.0),
                     "start": task.seconds.get("to_user_code", 0.0) + install, "install": install})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="same-nb-pod-start-"))
    try:
        shutil.copytree(ROOT / "examples" / "quickstart", work / "quickstart", ignore=shutil.ignore_patterns(".same"))
        notebook = work / "quickstart" / "quickstart.ipynb"
        assert run_notebook(notebook, use_cache=False).ok
        plain = compile_kubeflow(notebook, work / "plain")
        imaged = compile_kubeflow(notebook, work / "imaged", image="registry.example.com/bench/quickstart")
        step_of = {s.name: s.name for s in imaged.pipeline.steps}

        def build_image(pod) -> None:
            lock = (imaged.out_dir / "kfp" / "bundle" / "envs" / step_of[pod.task] / "requirements.txt").read_text()
            context = imaged.out_dir / "kfp" / "images" / lock_id(lock)
            for argv in install_commands(str(pod.python), context, None):
                pod.run(argv)
            pod.env.update({"SAME_NB_BUNDLE": str(context / "bundle.tar.gz"),
                            "SAME_NB_LOCK_SHA256": hashlib.sha256(lock.encode()).hexdigest()})

        results: dict[str, list[dict]] = {"without image": [], "with image": []}
        cache = work / "cache"
        for round_ in range(args.rounds):
            for label, compiled, prepare in (("without image", plain, None), ("with image", imaged, build_image)):
                sim = simulate(compiled.pipeline_yaml, workdir=work / f"sim-{label.replace(' ', '-')}-{round_}",
                               cache_dir=cache, prepare=prepare)
                if not sim.ok:
                    print(sim.render(), file=sys.stderr)
                    return 1
                results[label] += _figures(sim)
        print(f"| pods ({len(plain.pipeline.steps)} quickstart steps x {args.rounds} rounds) | venv s | "
              f"image build s | pod start s (of which lock install) |")
        print("|---|---|---|---|")
        for label, rows in results.items():
            med = {k: statistics.median(r[k] for r in rows) for k in ("venv", "prepare", "start", "install")}
            print(f"| {label} | {med['venv']:.1f} | {med['prepare']:.1f} | {med['start']:.1f} ({med['install']:.1f}) |")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
