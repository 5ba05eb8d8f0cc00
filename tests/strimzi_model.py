"""Strimzi resources checked with Strimzi's own API model, for tests/test_k8s.py.

Strimzi's CRD YAML is generated at its build by a generator that no reachable registry
publishes, but the Java model it is generated from, and that Strimzi's operators read every
resource with, is on Maven Central (`io.strimzi:api`). `tests/strimzi/StrimziCheck.java` reads
each Kafka, KafkaNodePool, KafkaTopic and KafkaUser with it and reports wrong types and enum
values (no scalar coercion, as the API server makes none), fields the model does not declare,
and unserved API versions. It does not see what only the CRD's generator adds (minimums,
patterns, required fields per version).

The jars (`tests/strimzi/pom.xml`) are copied once by Maven into
`$QUOTEFLOW_CACHE/strimzi-model-<hash>/` (default `~/.cache/quoteflow`) and the checker
compiled there; a change to the pom or the source makes a new folder. Maven and a JDK are
installed from Debian when missing, as scripts/services/kafka.sh does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "strimzi"
POM = HERE / "pom.xml"
SOURCE = HERE / "StrimziCheck.java"
CACHE_ROOT = Path(os.environ.get("QUOTEFLOW_CACHE", Path.home() / ".cache/quoteflow"))
KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")


class ModelError(RuntimeError):
    """The model could not be fetched, compiled or run."""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise ModelError(f"{' '.join(command[:3])} failed:\n{done.stderr or done.stdout}")
    return done


def _ensure_tools() -> None:
    if all(shutil.which(tool) for tool in ("mvn", "javac", "java")):
        return
    _run(["sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install "
          "-y -qq openjdk-17-jdk-headless maven"], timeout=900)


def _home() -> Path:
    """The cache folder with libs/ and classes/, made on first use."""
    digest = hashlib.sha256(POM.read_bytes() + SOURCE.read_bytes()).hexdigest()[:16]
    home = CACHE_ROOT / f"strimzi-model-{digest}"
    if (home / "classes" / "StrimziCheck.class").exists():
        return home
    _ensure_tools()
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="strimzi-model.", dir=CACHE_ROOT))
    try:
        _run(["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(POM),
              "dependency:copy-dependencies", "-DincludeScope=runtime",
              f"-DoutputDirectory={staging / 'libs'}"], timeout=600)
        _run(["javac", "-cp", str(staging / "libs" / "*"), "-d", str(staging / "classes"),
              str(SOURCE)], timeout=300)
        try:  # one rename: a concurrent run sees the whole folder or none of it
            staging.rename(home)
        except OSError:
            if not (home / "classes" / "StrimziCheck.class").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def problems(objects: list[dict]) -> list[list[str]]:
    """For each Strimzi resource, what Strimzi's model refuses in it (empty when nothing)."""
    home = _home()
    classpath = os.pathsep.join([str(home / "classes"), str(home / "libs" / "*")])
    done = _run(["java", "-Xshare:auto", "-cp", classpath, "StrimziCheck"],
                input=json.dumps(objects), timeout=120)
    found = json.loads(done.stdout)
    assert len(found) == len(objects)
    return found
