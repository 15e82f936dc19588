#!/usr/bin/env bash
# Submit corpusmill to Spark: the one way, for people and for Airflow alike.
#
#   deploy/submit.sh STAGE|pipeline CONFIG [spark-submit options] [--set KEY=VALUE ...] [--quiet] [-- APP ARGS]
#
#   deploy/submit.sh pipeline conf/local.yaml --master 'local[2]' --set output.path=/tmp/out
#   deploy/submit.sh normalize conf/cluster.yaml --master yarn --deploy-mode cluster --num-executors 8
#
# STAGE is one of jobs.pipeline.STAGES (checked before Spark starts); `pipeline` runs them all in one
# application. `--set`, `--quiet` and everything after `--` go to jobs/pipeline.py; every other
# argument goes to spark-submit, before the application. Relative paths in CONFIG resolve against
# the current directory, as with `corpusmill run`.
#
# What is shipped: dist/corpusmill.zip (jobs/ + udfs/) as --py-files, rebuilt here when a source file
# is newer than it. The third-party packages come from one of:
#   - the interpreter CORPUSMILL_PYTHON (default: <repo>/.venv/bin/python), used by the driver and the
#     Python workers: local mode, or a cluster whose nodes (or container image) have the packages;
#   - CORPUSMILL_ENV_ARCHIVE=dist/corpusmill-env.tar.gz (deploy/package.py): shipped with
#     --archives ...#environment and run as ./environment/bin/python on the executors (and on the
#     driver in cluster deploy mode; in client mode the driver stays on CORPUSMILL_PYTHON).
#
# Environment:
#   SPARK_SUBMIT            spark-submit to run (default: bin/spark-submit inside CORPUSMILL_PYTHON's pyspark)
#   CORPUSMILL_PYTHON       interpreter with corpusmill's dependencies (see above)
#   CORPUSMILL_ENV_ARCHIVE  packed environment to ship (unset: none)
#   CORPUSMILL_ZIP          prebuilt code zip to ship instead of <repo>/dist/corpusmill.zip
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 2 ] || usage
STAGE="$1"
CONFIG="$2"
shift 2

if [ -z "${CORPUSMILL_PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then CORPUSMILL_PYTHON="$REPO/.venv/bin/python"
  else CORPUSMILL_PYTHON="$(command -v python3)"; fi
fi
PY="$CORPUSMILL_PYTHON"

# The stage list is jobs.pipeline.STAGES and the local-mode defaults jobs.common.session.LOCAL_DEFAULTS,
# read from the source tree (light: neither imports pyspark).
if ! INFO="$(cd "$REPO" && "$PY" -c '
from jobs.pipeline import STAGES
from jobs.common.session import LOCAL_DEFAULTS
print(" ".join(STAGES))
print(" ".join(f"{k}={v}" for k, v in LOCAL_DEFAULTS.items()))')"; then
  echo "submit.sh: cannot import jobs.pipeline with $PY (set CORPUSMILL_PYTHON to corpusmill's interpreter)" >&2
  exit 2
fi
STAGES="$(sed -n 1p <<<"$INFO")"
LOCAL_CONF="$(sed -n 2p <<<"$INFO")"
case " pipeline $STAGES " in
  *" $STAGE "*) ;;
  *) echo "submit.sh: unknown stage '$STAGE'; use pipeline or one of: $STAGES" >&2; exit 2 ;;
esac
[ -f "$CONFIG" ] || [[ "$CONFIG" == *://* ]] || { echo "submit.sh: config '$CONFIG' not found" >&2; exit 2; }

SPARK_ARGS=()
APP_ARGS=()
DEPLOY_MODE=client
MASTER=""
while [ $# -gt 0 ]; do
  case "$1" in
    --set) [ $# -ge 2 ] || { echo "submit.sh: --set needs KEY=VALUE" >&2; exit 2; }
           APP_ARGS+=("--set" "$2"); shift 2 ;;
    --set=*) APP_ARGS+=("--set" "${1#--set=}"); shift ;;
    --quiet) APP_ARGS+=("--quiet"); shift ;;
    --) shift; APP_ARGS+=("$@"); break ;;
    --master) MASTER="${2:-}"; SPARK_ARGS+=("$1" "${2:-}"); shift 2 ;;
    --master=*) MASTER="${1#--master=}"; SPARK_ARGS+=("$1"); shift ;;
    --deploy-mode) DEPLOY_MODE="${2:-client}"; SPARK_ARGS+=("$1" "${2:-}"); shift 2 ;;
    --deploy-mode=*) DEPLOY_MODE="${1#--deploy-mode=}"; SPARK_ARGS+=("$1"); shift ;;
    *) SPARK_ARGS+=("$1"); shift ;;
  esac
done

ZIP="${CORPUSMILL_ZIP:-$REPO/dist/corpusmill.zip}"
if [ -z "${CORPUSMILL_ZIP:-}" ]; then
  if [ ! -f "$ZIP" ] || [ -n "$(find "$REPO/jobs" "$REPO/udfs" -newer "$ZIP" -type f -name '*.py' -print -quit)" ]; then
    "$PY" "$REPO/deploy/package.py" --zip-only --quiet
  fi
fi

if [ -z "${SPARK_SUBMIT:-}" ]; then
  SPARK_SUBMIT="$("$PY" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit"))')"
fi

PY_ARGS=()
if [ -n "${CORPUSMILL_ENV_ARCHIVE:-}" ]; then
  [ -f "$CORPUSMILL_ENV_ARCHIVE" ] || [[ "$CORPUSMILL_ENV_ARCHIVE" == *://* ]] || {
    echo "submit.sh: CORPUSMILL_ENV_ARCHIVE '$CORPUSMILL_ENV_ARCHIVE' not found (build it: $PY deploy/package.py)" >&2
    exit 2
  }
  PY_ARGS+=(--archives "$CORPUSMILL_ENV_ARCHIVE#environment" --conf spark.pyspark.python=./environment/bin/python)
  if [ "$DEPLOY_MODE" = cluster ]; then
    PY_ARGS+=(--conf spark.pyspark.driver.python=./environment/bin/python)
  else
    # The client-mode driver starts before any archive is unpacked: it runs here.
    PY_ARGS+=(--conf "spark.pyspark.driver.python=${PYSPARK_DRIVER_PYTHON:-$PY}")
  fi
else
  export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
  export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PY}"
fi
# Local mode gets what `corpusmill run` gets (quiet logs, no UI, few shuffle partitions; the config's
# spark.conf and later --conf arguments still win) and a loopback address (the hostname resolves to
# loopback on many machines and Spark warns and guesses). Never on a cluster: executors must reach
# the driver, and the cluster's defaults are the cluster's business.
LOCAL_ARGS=()
if [[ "$MASTER" == local* ]]; then
  export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
  for kv in $LOCAL_CONF; do LOCAL_ARGS+=(--conf "$kv"); done
fi

STAGE_ARGS=()
[ "$STAGE" = "pipeline" ] || STAGE_ARGS=(--stage "$STAGE")

set -x
exec "$SPARK_SUBMIT" \
  --name "corpusmill-$STAGE" \
  --py-files "$ZIP" \
  "${PY_ARGS[@]}" \
  "${LOCAL_ARGS[@]}" \
  "${SPARK_ARGS[@]}" \
  "$REPO/jobs/pipeline.py" "$CONFIG" "${STAGE_ARGS[@]}" "${APP_ARGS[@]}"
