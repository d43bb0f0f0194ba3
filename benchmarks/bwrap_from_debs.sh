# Sourced by the device scripts: on a host without bubblewrap, Debian's packages carried in
# .debs/ (grader/README.md says how) unpacked to /tmp/bwrap-root and named by INFERPREP_BWRAP.
if [ -d .debs ] && ! command -v bwrap >/dev/null; then
  for deb in .debs/*.deb; do dpkg -x "$deb" /tmp/bwrap-root; done
  export INFERPREP_BWRAP=/tmp/bwrap-root/usr/bin/bwrap
  if ldd "$INFERPREP_BWRAP" | grep -q "not found"; then
    printf '#!/bin/sh\nLD_LIBRARY_PATH=/tmp/bwrap-root/lib/x86_64-linux-gnu exec %s "$@"\n' \
      /tmp/bwrap-root/usr/bin/bwrap > /tmp/bwrap
    chmod +x /tmp/bwrap
    export INFERPREP_BWRAP=/tmp/bwrap
  fi
fi
