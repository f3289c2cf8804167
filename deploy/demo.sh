#!/usr/bin/env bash
# Placeholder until the netns demo topology lands (issue 6).
echo "demo not implemented yet (issue 6)" >&2
exit 1
