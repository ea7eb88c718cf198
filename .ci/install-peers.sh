#!/usr/bin/env bash
# Debian packages and other peers that the interop tests need (tests skip without them).
set -euo pipefail
