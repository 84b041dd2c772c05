"""A Spark session for `--engine spark`: local (Java 17 checked), a cluster, Spark Connect or
spark-submit, with the session settings every Spark job of LeadLens relies on (UTC)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from typing import TYPE_CHECKING

from core.settings import SparkConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MIN_JAVA = 17
INSTALL_JAVA = ("Spark needs Java 17 or later: install it (Debian/Ubuntu: `apt-get install "
                "openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) or point JAVA_HOME "
                "at one, or use a Spark Connect server through SPARK_REMOTE")


class SparkUnavailable(RuntimeError):
    """Spark cannot start here; the message says what to install."""


def java_problem() -> str | None:
    """Why a local Spark cannot start (no Java, or one older than 17), or None."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return "no `java` found. " + INSTALL_JAVA
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True,  # noqa: S603 (the JDK's own launcher)
                               timeout=30).stderr
    except (OSError, subprocess.SubprocessError) as err:
        return f"`{java} -version` failed ({err}). " + INSTALL_JAVA
    found = re.search(r'version "(\d+)', shown)
    if found is None or int(found.group(1)) < MIN_JAVA:
        return f"{java} is too old or unknown ({shown.splitlines()[:1]}). " + INSTALL_JAVA
    return None


def spark_session(cfg: SparkConfig) -> SparkSession:
    """A Spark session as `cfg` says: Spark Connect when SPARK_REMOTE is set; under
    `spark-submit` (`leadlens/spark_main.py`) the master and memory spark-submit was given;
    else `cfg.master` (a local Spark needs Java 17). The session's time zone is UTC, as the
    warehouse's."""
    remote = os.environ.get("SPARK_REMOTE")
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started the JVM
    if not remote and not submitted:
        problem = java_problem()
        if problem:
            raise SparkUnavailable(problem)
    # PySpark 4 warns that it does not fully support pandas 3; the paths LeadLens uses (Arrow
    # in and out of mapInPandas, toPandas) are covered by the parity tests
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("pyspark is not installed: pip install 'leadlens[spark]'") from None
    builder = SparkSession.builder.appName(cfg.app_name)
    if remote:
        builder = builder.remote(remote)
    elif not submitted:
        builder = builder.master(cfg.master)
    conf = {"spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true"}
    if not remote and not submitted:  # otherwise the cluster's (or spark-submit's) settings
        conf |= {"spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
                 "spark.driver.memory": cfg.driver_memory, "spark.ui.enabled": "false",
                 # training brings each test row's label and scores back (about 100 bytes)
                 "spark.driver.maxResultSize": cfg.driver_memory,
                 "spark.ui.showConsoleProgress": "false", "spark.log.level": "ERROR"}
    if not remote and not submitted and cfg.master.startswith("local"):
        # a local Spark's Python workers run this interpreter (and its packages), not the
        # first `python3` on the PATH (PySpark reads the variable when the session starts);
        # a cluster says which Python its workers run
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
