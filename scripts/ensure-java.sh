#!/usr/bin/env bash
# Spark needs a Java runtime (17 here, as on EMR 7). Install it when missing and we may.
set -euo pipefail
if command -v java >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing a Java runtime for Spark (openjdk-17-jre-headless)..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  exit 0
fi
echo "Spark needs Java 17: install it (e.g. 'sudo apt-get install openjdk-17-jre-headless' or 'brew install openjdk@17') and retry." >&2
exit 1
